//! The deployment files (issue 4) parse and carry what production needs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use serde_yaml::Value;

fn manifest(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/kubernetes")
        .join(name);
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn container(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["spec"]["containers"][0]
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
    let secret = manifest("secret.example.yaml");
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
    let env = container(&deployment)["env"].as_sequence().unwrap();
    let value = |name: &str| -> i64 {
        env.iter()
            .find(|var| var["name"] == name)
            .unwrap_or_else(|| panic!("{name} is set"))["value"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    };
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
