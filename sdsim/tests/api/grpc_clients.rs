//! An off-the-shelf gRPC client (Python grpcio with grpcio-health-checking and
//! grpcio-reflection from PyPI) calls health and reflection on every gRPC port of a running
//! stack. `deploy/test.sh` prepares the Python environment and sets `SDSIM_TEST_PYTHON`.

use crate::helpers::*;
use sdsim_protocols::Service;
use std::process::Command;

fn python() -> String {
    if let Ok(p) = std::env::var("SDSIM_TEST_PYTHON") {
        return p;
    }
    let ok = Command::new("python3")
        .args(["-c", "import grpc, grpc_health, grpc_reflection"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "no Python with grpcio, grpcio-health-checking and grpcio-reflection: run deploy/test.sh \
         (it creates the environment) or set SDSIM_TEST_PYTHON"
    );
    "python3".into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcio_calls_health_and_reflection_on_every_grpc_port() {
    let py = python();
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let args: Vec<String> = Service::ALL
        .iter()
        .map(|svc| format!("{svc}={}", s.running.addrs(*svc).grpc))
        .collect();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/grpc-check/check.py");
    let out =
        tokio::task::spawn_blocking(move || Command::new(py).arg(script).args(&args).output())
            .await
            .unwrap()
            .expect("run the Python gRPC client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "grpc check failed:\n{stdout}\n{stderr}"
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    for l in &lines {
        assert_eq!(l["ok"], true, "{l}");
        assert_eq!(l["health"]["<server>"], "SERVING", "{l}");
        // Reflection lists what the port serves, and only that.
        let services = l["reflection_services"].as_array().unwrap();
        assert_eq!(services.len(), 4, "{l}");
    }
    let auth = lines.iter().find(|l| l["service"] == "auth").unwrap();
    let methods: Vec<&str> = auth["methods"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m.as_str())
        .collect();
    for m in [
        "Login",
        "Register",
        "ValidateToken",
        "GetUserContext",
        "HealthCheck",
    ] {
        assert!(methods.contains(&m), "{methods:?}");
    }
}

/// The runtime's timing layer times every RPC of every service, those of the project and
/// simulation services too, though their adapters have no metrics code of their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_s_rpcs_are_timed_by_the_server_layer() {
    use sdsim_protocols::proto::{auth, gateway, project, simulation};
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let channel = |svc: Service| {
        tonic::transport::Endpoint::from_shared(format!("http://{}", s.running.addrs(svc).grpc))
            .unwrap()
            .connect_lazy()
    };
    let mut p =
        project::project_service_client::ProjectServiceClient::new(channel(Service::Project));
    let e = p
        .create_project(project::CreateProjectRequest::default())
        .await
        .unwrap_err();
    // No caller: refused, naming the field.
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    let mut sim = simulation::simulation_service_client::SimulationServiceClient::new(channel(
        Service::Simulation,
    ));
    let e = sim
        .get_simulation_status(simulation::GetSimulationStatusRequest::default())
        .await
        .unwrap_err();
    // No caller: refused, naming the field.
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    let mut a = auth::auth_service_client::AuthServiceClient::new(channel(Service::Auth));
    let e = a
        .login(auth::LoginRequest {
            email: "nobody".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    let mut g =
        gateway::gateway_service_client::GatewayServiceClient::new(channel(Service::Gateway));
    g.get_connected_clients(gateway::GetConnectedClientsRequest::default())
        .await
        .unwrap();

    let m = s.metrics(s.running.addrs(Service::Project).http).await;
    for (service, method, code) in [
        ("project", "CreateProject", "InvalidArgument"),
        ("simulation", "GetSimulationStatus", "InvalidArgument"),
        ("auth", "Login", "InvalidArgument"),
        ("gateway", "GetConnectedClients", "OK"),
    ] {
        let series = format!(
            "sdsim_grpc_server_handled_seconds_count{{code=\"{code}\",method=\"{method}\",service=\"{service}\"}} 1"
        );
        assert!(m.contains(&series), "{series} missing from:\n{m}");
    }
    // The standard services (health, reflection) are not counted as the service's RPCs.
    assert!(!m.contains("method=\"Check\""), "{m}");
}
