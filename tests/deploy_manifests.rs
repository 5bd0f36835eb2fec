//! The deployment files (issue 4) parse and carry what production needs; so do
//! the proxy configurations of `deploy/proxies/` that no test can run here
//! (Traefik and Envoy are not packaged; tests/proxies.rs runs nginx and Caddy).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use serde_yaml::Value;

fn manifest(name: &str) -> Value {
    yaml("deploy/kubernetes/base", name)
}

fn yaml(dir: &str, name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(dir)
        .join(name);
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The identity headers of SPEC §9, which every proxy must copy to the upstream.
const IDENTITY_HEADERS: [&str; 6] = [
    "X-Auth-Subject",
    "X-Auth-Client-Id",
    "X-Auth-Username",
    "X-Auth-Scope",
    "X-Auth-Credential",
    "X-Auth-Expires",
];

fn container(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["spec"]["containers"][0]
}

/// The literal value of an environment variable the container sets.
fn env_value<'a>(container: &'a Value, name: &str) -> &'a str {
    container["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|var| var["name"] == name)
        .unwrap_or_else(|| panic!("{name} is set"))["value"]
        .as_str()
        .unwrap()
}

#[test]
fn the_deployment_runs_two_non_root_replicas_with_grpc_probes() {
    let deployment = manifest("deployment.yaml");
    assert_eq!(deployment["kind"], "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_ne!(pod["securityContext"]["runAsUser"], 0);

    let container = container(&deployment);
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert!(container["resources"]["requests"]["cpu"].is_string());
    assert!(container["resources"]["requests"]["memory"].is_string());

    let liveness = &container["livenessProbe"]["grpc"];
    let readiness = &container["readinessProbe"]["grpc"];
    assert_eq!(liveness["port"], 50051);
    assert_eq!(readiness["port"], 50051);
    // Liveness must not follow the database; readiness must.
    assert_eq!(liveness["service"], "liveness");
    assert_eq!(readiness["service"], "oauthd.v1.TokenService");

    let ports: Vec<i64> = container["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| p["containerPort"].as_i64().unwrap())
        .collect();
    assert_eq!(ports, vec![3030, 50051]);
}

#[test]
fn secrets_come_from_a_secret() {
    let deployment = manifest("deployment.yaml");
    let env = container(&deployment)["env"].as_sequence().unwrap();
    for name in ["OAUTHD_DATABASE_URL", "OAUTHD_MASTER_KEY"] {
        let var = env.iter().find(|var| var["name"] == name).unwrap();
        assert!(
            var["valueFrom"]["secretKeyRef"]["name"].is_string(),
            "{name}"
        );
        assert!(var.get("value").is_none(), "{name} must not be inline");
    }
    let secret = yaml("deploy/kubernetes", "secret.example.yaml");
    assert_eq!(secret["kind"], "Secret");
    assert!(secret["stringData"]["database-url"].is_string());
    assert!(secret["stringData"]["master-key"].is_string());
}

#[test]
fn one_service_exposes_both_ports_of_the_replicas() {
    let service = manifest("service.yaml");
    let deployment = manifest("deployment.yaml");
    assert_eq!(service["kind"], "Service");
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    for (key, value) in service["spec"]["selector"].as_mapping().unwrap() {
        assert_eq!(&labels[key], value);
    }
    let ports: Vec<i64> = service["spec"]["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| p["port"].as_i64().unwrap())
        .collect();
    assert_eq!(ports, vec![3030, 50051]);
    let kustomization = manifest("kustomization.yaml");
    assert_eq!(kustomization["resources"].as_sequence().unwrap().len(), 2);
}

#[test]
fn the_tls_overlay_mounts_the_cert_manager_secret_and_probes_the_plaintext_health_port() {
    let overlay = |name: &str| yaml("deploy/kubernetes/tls", name);
    let kustomization = overlay("kustomization.yaml");
    assert_eq!(
        kustomization["resources"],
        serde_yaml::from_str::<Value>("[../base, certificate.yaml]").unwrap()
    );
    let patches: Vec<&str> = kustomization["patches"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|patch| patch["path"].as_str().unwrap())
        .collect();
    assert_eq!(patches, ["deployment-tls.yaml", "service-tls.yaml"]);

    let certificate = overlay("certificate.yaml");
    assert_eq!(certificate["apiVersion"], "cert-manager.io/v1");
    assert_eq!(certificate["kind"], "Certificate");
    let secret_name = &certificate["spec"]["secretName"];
    assert!(secret_name.is_string());

    let patch = overlay("deployment-tls.yaml");
    assert_eq!(
        patch["metadata"]["name"],
        manifest("deployment.yaml")["metadata"]["name"]
    );
    let pod = &patch["spec"]["template"]["spec"];
    let volume = &pod["volumes"][0];
    assert_eq!(&volume["secret"]["secretName"], secret_name);
    let container = container(&patch);
    assert_eq!(
        container["name"],
        self::container(&manifest("deployment.yaml"))["name"]
    );
    let mount = &container["volumeMounts"][0];
    assert_eq!(mount["name"], volume["name"]);
    assert_eq!(mount["readOnly"], true);
    // A subPath mount would never see the kubelet swap the files in.
    assert!(mount.get("subPath").is_none());
    let value = |name: &str| env_value(container, name).to_owned();
    let dir = mount["mountPath"].as_str().unwrap();
    assert_eq!(value("OAUTHD_TLS_CERT"), format!("{dir}/tls.crt"));
    assert_eq!(value("OAUTHD_TLS_KEY"), format!("{dir}/tls.key"));

    // kubelet's gRPC probes speak no TLS: both go to the health-only port,
    // still asking for the base's service names.
    let health_port: i64 = value("OAUTHD_HEALTH_ADDR")
        .rsplit_once(':')
        .unwrap()
        .1
        .parse()
        .unwrap();
    assert_eq!(container["ports"][0]["containerPort"], health_port);
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(container[probe]["grpc"]["port"], health_port, "{probe}");
        assert!(container[probe]["grpc"].get("service").is_none(), "{probe}");
    }
    assert_eq!(container["startupProbe"]["httpGet"]["scheme"], "HTTPS");

    // The health port stays out of the Service; gRPC there is now TLS.
    let service_patch = overlay("service-tls.yaml");
    for service in [&service_patch, &manifest("service.yaml")] {
        let ports = service["spec"]["ports"].as_sequence().unwrap();
        assert!(ports.iter().all(|port| port["port"] != health_port));
    }
    let grpc = service_patch["spec"]["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|port| port["port"] == 50051)
        .unwrap();
    assert_eq!(grpc["appProtocol"], "grpc");
}

#[test]
fn the_dockerfile_builds_in_one_stage_and_runs_unprivileged_in_another() {
    let dockerfile =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Dockerfile"))
            .unwrap();
    assert_eq!(
        dockerfile
            .lines()
            .filter(|line| line.starts_with("FROM "))
            .count(),
        2
    );
    assert!(dockerfile.contains("COPY --from=build"));
    assert!(
        dockerfile.lines().any(|line| line.starts_with("USER ")
            && !line.contains("root")
            && !line.contains(" 0"))
    );
}

#[test]
fn the_pod_outlives_the_drain_deadline_and_caps_its_connections() {
    let deployment = manifest("deployment.yaml");
    let value = |name: &str| -> i64 { env_value(container(&deployment), name).parse().unwrap() };
    let grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        .as_i64()
        .unwrap();
    // SIGKILL must not come before the drain deadline has closed what is left.
    assert!(grace > value("OAUTHD_SHUTDOWN_GRACE"));
    assert!(value("OAUTHD_MAX_CONNECTIONS") <= 512, "sized for 128Mi");
    assert_eq!(
        container(&deployment)["resources"]["limits"]["memory"],
        "128Mi"
    );
}

#[test]
fn traefik_asks_the_check_and_copies_the_six_identity_headers() {
    let traefik = yaml("deploy/proxies", "traefik.yml");
    let http = &traefik["http"];
    let upstream = &http["services"]["api"]["loadBalancer"]["servers"][0]["url"];
    assert_eq!(upstream, "http://127.0.0.1:8080");
    for (router, middleware, address) in [
        ("api", "oauthd", "http://127.0.0.1:3030/oauth/check"),
        (
            "reports",
            "oauthd-read",
            "http://127.0.0.1:3030/oauth/check?scope=read",
        ),
    ] {
        assert_eq!(http["routers"][router]["middlewares"][0], middleware);
        assert_eq!(http["routers"][router]["service"], "api");
        let forward = &http["middlewares"][middleware]["forwardAuth"];
        assert_eq!(forward["address"], address);
        // Traefik at the edge must not take X-Forwarded-Uri from the client.
        assert_eq!(forward["trustForwardHeader"], false);
        let copied: Vec<&str> = forward["authResponseHeaders"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|header| header.as_str().unwrap())
            .collect();
        assert_eq!(copied, IDENTITY_HEADERS);
    }
}

#[test]
fn envoy_asks_oauthds_grpc_check_over_http2_and_denies_when_it_cannot() {
    let envoy = yaml("deploy/proxies", "envoy.yaml");
    let resources = &envoy["static_resources"];
    let manager = &resources["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
    let filters = manager["http_filters"].as_sequence().unwrap();
    assert_eq!(filters[0]["name"], "envoy.filters.http.ext_authz");
    assert_eq!(
        filters.last().unwrap()["name"],
        "envoy.filters.http.router",
        "the router comes last"
    );
    let ext_authz = &filters[0]["typed_config"];
    assert_eq!(
        ext_authz["@type"],
        "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz"
    );
    assert_eq!(ext_authz["transport_api_version"], "V3");
    assert_eq!(ext_authz["failure_mode_allow"], false);
    let cluster_name = &ext_authz["grpc_service"]["envoy_grpc"]["cluster_name"];

    let clusters = resources["clusters"].as_sequence().unwrap();
    let cluster = |name: &Value| {
        clusters
            .iter()
            .find(|cluster| &cluster["name"] == name)
            .unwrap_or_else(|| panic!("cluster {name:?}"))
    };
    let endpoint = |cluster: &Value| {
        cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
            ["socket_address"]
            .clone()
    };
    let oauthd = cluster(cluster_name);
    assert_eq!(endpoint(oauthd)["port_value"], 50051);
    let protocol = &oauthd["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
    assert!(
        protocol["explicit_http_config"]["http2_protocol_options"].is_mapping(),
        "gRPC needs HTTP/2"
    );

    let routes = manager["route_config"]["virtual_hosts"][0]["routes"]
        .as_sequence()
        .unwrap();
    let reports = routes
        .iter()
        .find(|route| route["match"]["prefix"] == "/reports/")
        .unwrap();
    let per_route = &reports["typed_per_filter_config"]["envoy.filters.http.ext_authz"];
    assert_eq!(
        per_route["@type"],
        "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute"
    );
    assert_eq!(
        per_route["check_settings"]["context_extensions"]["scope"],
        "read"
    );
    for route in routes {
        assert_eq!(
            endpoint(cluster(&route["route"]["cluster"]))["port_value"],
            8080
        );
    }
}

#[test]
fn the_readme_shows_every_proxy_configuration_whole() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for name in ["nginx.conf", "Caddyfile", "traefik.yml", "envoy.yaml"] {
        let path = format!("{}/deploy/proxies/{name}", env!("CARGO_MANIFEST_DIR"));
        let file = std::fs::read_to_string(path).unwrap();
        assert!(
            readme.contains(file.trim_end()),
            "README.md does not show deploy/proxies/{name} as it is"
        );
    }
}
