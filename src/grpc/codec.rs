//! The codec of `oauthd.v1.TokenService` (wired in by `build.rs` through
//! `codec_path`): tonic-prost's, except that a request that fails to decode is
//! the caller's mistake, not ours.
//!
//! tonic-prost answers a message it cannot decode (broken protobuf, a string
//! field that is not UTF-8) with `INTERNAL` and the decoder's text. SPEC §6
//! keeps `INTERNAL` for the unexpected, with no internals in the message; a
//! malformed request is `INVALID_ARGUMENT` with `ErrorInfo` reason
//! `invalid_request`, like every other malformed request.
//!
//! Generated clients use this codec too, so a Rust client that cannot decode a
//! response sees the same status.

use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic_prost::{ProstCodec, ProstDecoder};

use super::status::to_status;
use crate::oauth::error::OAuthError;

/// [`ProstCodec`] with decode failures mapped to `INVALID_ARGUMENT`.
#[derive(Debug, Clone)]
pub(crate) struct OauthdCodec<T, U>(ProstCodec<T, U>);

impl<T, U> Default for OauthdCodec<T, U> {
    fn default() -> Self {
        Self(ProstCodec::default())
    }
}

impl<T, U> Codec for OauthdCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = <ProstCodec<T, U> as Codec>::Encoder;
    type Decoder = RequestDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.0.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        RequestDecoder(self.0.decoder())
    }
}

/// tonic-prost's decoder, whose failures say only that the message could not
/// be decoded.
#[derive(Debug, Clone)]
pub(crate) struct RequestDecoder<U>(ProstDecoder<U>);

impl<U: prost::Message + Default> Decoder for RequestDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.0.decode(buf).map_err(|_| undecodable())
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}

/// The status of a request message that could not be decoded.
pub(crate) fn undecodable() -> Status {
    to_status(&OAuthError::undecodable_message())
}

#[cfg(test)]
mod tests {
    use tonic::Code;
    use tonic_types::StatusExt as _;

    use super::*;

    #[test]
    fn an_undecodable_message_is_invalid_request_with_no_decoder_text() {
        let status = undecodable();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "The request message could not be decoded");
        let info = status.get_details_error_info().unwrap();
        assert_eq!(
            (info.reason.as_str(), info.domain.as_str()),
            ("invalid_request", "oauthd")
        );
    }
}
