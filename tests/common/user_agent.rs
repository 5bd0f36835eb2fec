//! A browser without a browser, for the pages of SPEC §7: an HTTP client that
//! keeps cookies, follows no redirect, and reads forms out of the HTML.
//!
//! The cookie jar is the test's own rather than reqwest's, so that a test can
//! read each `Set-Cookie` as it came, and can remove, forge or swap a cookie.

use std::collections::BTreeMap;
use std::sync::Mutex;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};

/// An HTTP client with a cookie jar, for one server.
pub struct UserAgent {
    http: reqwest::Client,
    base: String,
    cookies: Mutex<BTreeMap<String, String>>,
}

/// One response, read whole.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl UserAgent {
    /// A client for the server at `base` (`http://host:port`), with no cookies.
    pub fn new(base: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.trim_end_matches('/').to_owned(),
            cookies: Mutex::new(BTreeMap::new()),
        }
    }

    /// `GET` a path of the server (or an absolute URL).
    pub async fn get(&self, path: &str) -> Page {
        let request = self.http.get(self.url(path));
        self.send(request).await
    }

    /// `POST` a form to a path of the server.
    pub async fn post(&self, path: &str, form: &[(String, String)]) -> Page {
        let request = self.http.post(self.url(path)).form(form);
        self.send(request).await
    }

    /// `POST` the page's only form, with its hidden fields, `extra` added and
    /// any field named in `extra` replaced.
    pub async fn submit(&self, page: &Page, extra: &[(&str, &str)]) -> Page {
        let (action, hidden) = page.form();
        let mut fields: Vec<(String, String)> = hidden
            .into_iter()
            .filter(|(name, _)| !extra.iter().any(|(given, _)| given == name))
            .collect();
        fields.extend(
            extra
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned())),
        );
        self.post(&action, &fields).await
    }

    /// Follows a redirect to a page of this server.
    pub async fn follow(&self, redirect: &Page) -> Page {
        let location = redirect.location().expect("a redirect");
        assert!(
            location.starts_with('/') || location.starts_with(&self.base),
            "the redirect leaves the server: {location}"
        );
        self.get(location).await
    }

    /// A cookie's value in the jar.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.lock().unwrap().get(name).cloned()
    }

    /// Puts a cookie in the jar, as another page could have.
    pub fn set_cookie(&self, name: &str, value: &str) {
        self.cookies
            .lock()
            .unwrap()
            .insert(name.to_owned(), value.to_owned());
    }

    /// Takes a cookie out of the jar.
    pub fn remove_cookie(&self, name: &str) {
        self.cookies.lock().unwrap().remove(name);
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    async fn send(&self, mut request: reqwest::RequestBuilder) -> Page {
        let jar = self.cookie_header();
        if !jar.is_empty() {
            request = request.header(reqwest::header::COOKIE, jar);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap();
        let page = Page {
            status,
            headers,
            body,
        };
        self.keep_cookies(&page);
        page
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .lock()
            .unwrap()
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// What a browser does with `Set-Cookie`: keep the value, or drop the
    /// cookie when it is emptied or expired.
    fn keep_cookies(&self, page: &Page) {
        let mut jar = self.cookies.lock().unwrap();
        for raw in page.set_cookies() {
            let cookie = cookie::Cookie::parse(raw.clone()).unwrap();
            let expired = cookie.max_age().is_some_and(|age| age.is_zero());
            if cookie.value().is_empty() || expired {
                jar.remove(cookie.name());
            } else {
                jar.insert(cookie.name().to_owned(), cookie.value().to_owned());
            }
        }
    }
}

impl Page {
    /// A header's value, if sent once or more (the first).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|value| value.to_str().unwrap())
    }

    /// `Location`, for a redirect.
    pub fn location(&self) -> Option<&str> {
        self.header(LOCATION.as_str())
    }

    /// Every `Set-Cookie`, as sent.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|value| value.to_str().unwrap().to_owned())
            .collect()
    }

    /// The `Set-Cookie` for `name`, if the response set it.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.set_cookies()
            .into_iter()
            .find(|raw| raw.starts_with(&format!("{name}=")))
    }

    /// The page's only form: its action, and its hidden fields in order.
    pub fn form(&self) -> (String, Vec<(String, String)>) {
        let forms: Vec<&str> = self.body.split("<form").skip(1).collect();
        assert_eq!(forms.len(), 1, "one form on the page:\n{}", self.body);
        let form = forms[0].split("</form>").next().unwrap();
        let action = attribute(form.split('>').next().unwrap(), "action").expect("an action");
        let hidden = tags(form, "input")
            .filter(|tag| attribute(tag, "type").as_deref() == Some("hidden"))
            .map(|tag| {
                (
                    attribute(tag, "name").expect("a name"),
                    attribute(tag, "value").unwrap_or_default(),
                )
            })
            .collect();
        (action, hidden)
    }

    /// The value of the hidden field `name` in the page's form.
    pub fn hidden(&self, name: &str) -> Option<String> {
        self.form()
            .1
            .into_iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value)
    }

    /// The `<input>` whose `name` is `name`, and the text of the `<label>`
    /// that names it by `for`, if the page has both.
    pub fn labelled_input(&self, name: &str) -> Option<(String, String)> {
        let input = tags(&self.body, "input")
            .find(|tag| attribute(tag, "name").as_deref() == Some(name))?;
        let id = attribute(input, "id")?;
        let label = self.body.split("<label").skip(1).find(|label| {
            attribute(label.split('>').next().unwrap(), "for").as_deref() == Some(id.as_str())
        })?;
        let text = label.split_once('>')?.1.split("</label>").next()?;
        Some((input.to_owned(), unescape(text.trim())))
    }

    /// The page's text with tags removed and entities decoded, roughly.
    pub fn text(&self) -> String {
        let mut text = String::new();
        for part in self.body.split('<') {
            if let Some((_, after)) = part.split_once('>') {
                text.push_str(after);
            }
        }
        unescape(&text)
    }
}

/// Each `<name ...>` tag's inside (after the name, before `>`).
fn tags<'a>(html: &'a str, name: &str) -> impl Iterator<Item = &'a str> + 'a {
    let opening = format!("<{name} ");
    html.match_indices(&opening)
        .map(|(at, _)| at + opening.len())
        .collect::<Vec<_>>()
        .into_iter()
        .map(|start| html[start..].split('>').next().unwrap())
}

/// A double-quoted attribute's decoded value.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let marker = format!("{name}=\"");
    let start = tag
        .match_indices(&marker)
        .find(|(at, _)| *at == 0 || tag.as_bytes()[at - 1].is_ascii_whitespace())?
        .0
        + marker.len();
    let end = tag[start..].find('"')? + start;
    Some(unescape(&tag[start..end]))
}

/// Decodes the entities minijinja's HTML escaping writes.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
}

/// The parameters of a redirect to the client: the query (or the fragment)
/// of `location`, which must be `redirect_uri` followed by `?` (or `#`).
/// A parameter that came twice fails the test.
pub fn redirect_params(
    location: &str,
    redirect_uri: &str,
    in_fragment: bool,
) -> BTreeMap<String, String> {
    let separator = if in_fragment { '#' } else { '?' };
    let rest = location
        .strip_prefix(redirect_uri)
        .and_then(|rest| rest.strip_prefix(separator))
        .unwrap_or_else(|| panic!("{location} is not {redirect_uri}{separator}..."));
    if !in_fragment {
        assert!(!rest.contains('#'), "no fragment expected: {location}");
    }
    let mut params = BTreeMap::new();
    for (name, value) in form_urlencoded::parse(rest.as_bytes()) {
        let previous = params.insert(name.clone().into_owned(), value.into_owned());
        assert!(previous.is_none(), "{name} came twice in {location}");
    }
    params
}
