//! The simulation service's gRPC adapter. Its full contract is served now;
//! the RPCs whose logic has not landed yet answer UNIMPLEMENTED with a message saying so,
//! and HealthCheck reports the real state of the service and its dependencies.

use crate::runs::{Change, RunRow, Runs, Start, Status as RunStatus};
use crate::validation::Verdict;
use sdsim_protocols::limits::MAX_DESIGN_MESSAGE_BYTES;
use sdsim_protocols::proto::common::{HealthCheckRequest, HealthCheckResponse};
use sdsim_protocols::proto::simulation as spb;
use sdsim_protocols::Service;
use sdsim_runtime::error::ServiceError;
use sdsim_runtime::grpc::reply;
use sdsim_runtime::health::HealthProbe;
use sdsim_runtime::mesh::Mesh;
use std::sync::Arc;
use tonic::{Request, Response, Status};

#[derive(Clone)]
pub struct SimulationGrpc {
    pub health: HealthProbe,
    pub runs: Arc<Runs>,
    /// Calls to the project service (the design of a saved project).
    pub mesh: Mesh,
    /// The live instances (a run's owner, to forward its controls to).
    pub instances: sdsim_runtime::discovery::View,
    /// `admin.fault_injection`: a run may be made to panic (tests).
    pub fault_injection: bool,
    /// Channels to the other simulation instances, by address.
    pub peers: Arc<std::sync::Mutex<std::collections::HashMap<String, tonic::transport::Channel>>>,
}

/// Marks a control call forwarded to a run's owner (forwarded once, never again).
const FORWARDED: &str = "x-sdsim-forwarded";

type Peer = spb::simulation_service_client::SimulationServiceClient<tonic::transport::Channel>;

fn uuid_of(field: &str, v: &str) -> Result<uuid::Uuid, ServiceError> {
    v.parse()
        .map_err(|_| ServiceError::invalid(field, format!("{field} must be a UUID")))
}

fn status_pb(st: RunStatus) -> spb::GetSimulationStatusResponse {
    let r = st.row;
    let simulated = st.live.as_ref().map_or(
        if r.status == "completed" {
            r.duration_seconds
        } else {
            0.0
        },
        |p| p.simulated_s,
    );
    spb::GetSimulationStatusResponse {
        simulation_id: r.id.to_string(),
        status: r.status,
        progress_percentage: ((simulated / r.duration_seconds.max(1e-9)) * 100.0).clamp(0.0, 100.0)
            as i32,
        started_at: r.started_at.map_or(0, |t| t.timestamp()),
        estimated_completion: 0,
        active_components: Vec::new(),
        current_metrics: Default::default(),
        error: r.error.unwrap_or_default(),
        simulated_seconds: simulated,
        duration_seconds: r.duration_seconds,
        project_id: r.project_id.map(|p| p.to_string()).unwrap_or_default(),
        completed_at: r.completed_at.map_or(0, |t| t.timestamp()),
        windows: st.live.map_or(0, |p| p.windows as i64),
        speed: r.speed,
        seed: r.seed,
        injections_json: r.injections.to_string(),
        window_seconds: r.window_seconds,
        queue_position: st.queue_position.map_or(0, |p| p as i32),
    }
}

/// `msg` as a call forwarded to a run's owner.
fn forward<T>(msg: T) -> Request<T> {
    let mut req = Request::new(msg);
    req.metadata_mut()
        .insert(FORWARDED, tonic::metadata::MetadataValue::from_static("1"));
    req
}

/// A forwarded call's answer, as this instance's.
fn forwarded<T>(res: Result<Response<T>, Status>) -> Result<T, ServiceError> {
    res.map(Response::into_inner)
        .map_err(|s| ServiceError::from_status(&s))
}

/// The answer to a started run.
fn started(row: RunRow) -> spb::StartSimulationResponse {
    spb::StartSimulationResponse {
        simulation_id: row.id.to_string(),
        status: row.status,
        started_at: row.started_at.map_or(0, |t| t.timestamp()),
        websocket_channel: format!("simulation:stream:{}", row.id),
        estimated_duration: if row.speed > 0.0 {
            (row.duration_seconds / row.speed).ceil() as i32
        } else {
            0
        },
    }
}

/// What a caller wants to do with a run.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Need {
    /// Its status and results.
    Watch,
    /// Stop, pause, resume, re-pace or delete it.
    Control,
}

/// Acts on a run where it runs: here (`$local`, given the run's row), or on its owner
/// (`$remote`, given the owner's client; once forwarded, never again). A run that is live but
/// not where the first try went (its lease was just taken over by another instance, or that
/// instance is still resuming it) is tried again where it runs now, for up to two leases:
/// a takeover is never the caller's error. (A macro: async closures borrowing the adapter
/// make tonic's futures not `Send`.)
macro_rules! on_owner {
    ($grpc:expr, $user:expr, $id:expr, $was_forwarded:expr,
     |$row:ident| $local:expr, |$owner:ident| $remote:expr $(,)?) => {
        async {
            const PAUSE: std::time::Duration = std::time::Duration::from_millis(100);
            let mut tries = 2 * $grpc.runs.lease_ms.max(500) / 100;
            let mut row = $grpc.authorize($user, $id, Need::Control).await?;
            loop {
                let res = match $grpc.owner_elsewhere(&row, $was_forwarded) {
                    Some(mut $owner) => forwarded($remote.await),
                    None => {
                        let $row = row.clone();
                        $local.await
                    }
                };
                let not_running = matches!(
                    &res,
                    Err(ServiceError::Conflict { code, .. }) if code == "not_running"
                );
                if !not_running || $was_forwarded || tries == 0 {
                    return res;
                }
                tries -= 1;
                tokio::time::sleep(PAUSE).await;
                let again = $grpc.runs.row($id).await?;
                if !matches!(again.status.as_str(), "running" | "paused") {
                    return res;
                }
                row = again;
            }
        }
        .await
    };
}

impl SimulationGrpc {
    /// The client of the instance that runs `row`, when that is another live instance and
    /// this call was not already forwarded: stop, pause, resume, speed and chaos act on the
    /// run's thread, which only its owner has.
    fn owner_elsewhere(&self, row: &RunRow, forwarded: bool) -> Option<Peer> {
        if forwarded
            || self.runs.is_local(row.id)
            || !matches!(row.status.as_str(), "pending" | "running" | "paused")
        {
            return None;
        }
        let owner = row.owner_instance.as_deref()?;
        if owner == self.runs.instance_id {
            return None;
        }
        let addr = self
            .instances
            .instances("simulation")
            .into_iter()
            .find(|i| i.instance_id == owner)?
            .grpc_addr;
        let uri = if addr.contains("://") {
            addr
        } else {
            format!("http://{addr}")
        };
        let mut peers = self.peers.lock().ok()?;
        let channel = match peers.get(&uri) {
            Some(c) => c.clone(),
            None => {
                let c = tonic::transport::Endpoint::from_shared(uri.clone())
                    .ok()?
                    .connect_timeout(std::time::Duration::from_secs(2))
                    .timeout(std::time::Duration::from_secs(15))
                    .connect_lazy();
                peers.insert(uri, c.clone());
                c
            }
        };
        Some(spb::simulation_service_client::SimulationServiceClient::new(channel))
    }

    /// The run `id`, if `user` may do `need` with it. A run of a saved project is visible
    /// only to whoever may view the project, its starter included (unshared, or the project
    /// made private or put in the trash, the starter's runs of it go too); its starter may do
    /// anything with it, whoever else may view the project may watch it, and the project's
    /// owner and editors may control it. A run of a design not saved as a project is its
    /// starter's alone. Not visible: 404; visible but not allowed: 403.
    async fn authorize(&self, user: &str, id: &str, need: Need) -> Result<RunRow, ServiceError> {
        let user = uuid_of("user_id", user)?;
        let row = self.runs.row(id).await?;
        let not_found = || ServiceError::NotFound(format!("no simulation {id}"));
        let Some(project) = row.project_id else {
            return if row.user_id == user {
                Ok(row)
            } else {
                Err(not_found())
            };
        };
        let level = match self.project_level(user, project).await {
            Err(ServiceError::NotFound(_)) => return Err(not_found()),
            other => other?,
        };
        if row.user_id == user {
            return Ok(row);
        }
        match (level.as_str(), need) {
            ("owner" | "editor", _) | ("viewer", Need::Watch) => Ok(row),
            ("viewer", Need::Control) => Err(ServiceError::Forbidden(format!(
                "only whoever started simulation {id} and the project's owner and editors may \
                 change it"
            ))),
            _ => Err(not_found()),
        }
    }

    /// What `user` may do with `project`: owner, editor, viewer (a public project they are
    /// not shared counts as viewer); NotFound when they may not see it.
    async fn project_level(
        &self,
        user: uuid::Uuid,
        project: uuid::Uuid,
    ) -> Result<String, ServiceError> {
        use sdsim_protocols::proto::project as ppb;
        let req = ppb::GetProjectPermissionsRequest {
            project_id: project.to_string(),
            user_id: user.to_string(),
            is_admin: false,
        };
        match self
            .mesh
            .call(Service::Project, "GetProjectPermissions", |ch| {
                let req = req.clone();
                let mut c = ppb::project_service_client::ProjectServiceClient::new(ch);
                async move {
                    c.get_project_permissions(sdsim_runtime::request_id::request(req))
                        .await
                }
            })
            .await
        {
            Ok(p) => Ok(p.access_level),
            // Visible (a public project) but not shared with them: a reader.
            Err(ServiceError::Forbidden(_)) => Ok("viewer".into()),
            Err(e) => Err(e),
        }
    }

    /// The design of version `version` (0: current) of a project `user` may view.
    async fn project_design(
        &self,
        user: &str,
        project: &str,
        version: i32,
    ) -> Result<String, ServiceError> {
        use sdsim_protocols::proto::project as ppb;
        let caller = Some(ppb::Caller {
            user_id: user.to_string(),
            is_admin: false,
        });
        if version > 0 {
            let req = ppb::GetVersionRequest {
                caller,
                project_id: project.to_string(),
                version,
            };
            let v = self
                .mesh
                .call(Service::Project, "GetVersion", |ch| {
                    let req = req.clone();
                    let mut c = ppb::project_service_client::ProjectServiceClient::new(ch)
                        .max_decoding_message_size(MAX_DESIGN_MESSAGE_BYTES);
                    async move { c.get_version(sdsim_runtime::request_id::request(req)).await }
                })
                .await?;
            Ok(v.design_json)
        } else {
            let req = ppb::GetProjectRequest {
                project_id: project.to_string(),
                user_id: user.to_string(),
                include_configuration: true,
                is_admin: false,
                email: String::new(),
            };
            let p = self
                .mesh
                .call(Service::Project, "GetProject", |ch| {
                    let req = req.clone();
                    let mut c = ppb::project_service_client::ProjectServiceClient::new(ch)
                        .max_decoding_message_size(MAX_DESIGN_MESSAGE_BYTES);
                    async move { c.get_project(sdsim_runtime::request_id::request(req)).await }
                })
                .await?;
            Ok(p.project.map(|p| p.design_json).unwrap_or_default())
        }
    }
}

#[tonic::async_trait]
impl spb::simulation_service_server::SimulationService for SimulationGrpc {
    async fn start_simulation(
        &self,
        req: Request<spb::StartSimulationRequest>,
    ) -> Result<Response<spb::StartSimulationResponse>, Status> {
        let r = req.into_inner();
        let res = async {
            let user = uuid_of("user_id", &r.user_id)?;
            if !r.replay_of.is_empty() {
                // A replay: anyone who may watch the run may replay it.
                let original = self
                    .authorize(&r.user_id, &r.replay_of, Need::Watch)
                    .await?;
                let design = self.runs.design_of(original.id).await?;
                let row = self
                    .runs
                    .start(Runs::replay_of(&original, &design, user, r.speed)?)
                    .await?;
                return Ok(started(row));
            }
            let (project, design_json) = match (r.project_id.is_empty(), r.design_json.is_empty()) {
                (false, true) => {
                    let project = r.project_id.parse().map_err(|_| {
                        ServiceError::NotFound(format!("no project {}", r.project_id))
                    })?;
                    let design = self
                        .project_design(&r.user_id, &r.project_id, r.project_version)
                        .await?;
                    (Some(project), design)
                }
                (true, false) => (None, r.design_json),
                _ => {
                    return Err(ServiceError::invalid(
                        "design",
                        "give either a design or a project_id",
                    ))
                }
            };
            let row = self
                .runs
                .start(Start {
                    user,
                    project,
                    design_json,
                    seed: r.has_seed.then_some(r.seed),
                    speed: r.speed,
                    window_s: (r.window_seconds > 0.0).then_some(r.window_seconds),
                    scheduled: Vec::new(),
                })
                .await?;
            Ok(started(row))
        }
        .await;
        reply(res)
    }

    async fn compare_simulations(
        &self,
        req: Request<spb::CompareSimulationsRequest>,
    ) -> Result<Response<spb::CompareSimulationsResponse>, Status> {
        let r = req.into_inner();
        let res = async {
            let a = self
                .authorize(&r.user_id, &r.simulation_a, Need::Watch)
                .await?;
            let b = self
                .authorize(&r.user_id, &r.simulation_b, Need::Watch)
                .await?;
            let summary = |row: &RunRow| {
                serde_json::json!({
                    "id": row.id.to_string(),
                    "name": row.name,
                    "project_id": row.project_id.map(|p| p.to_string()),
                    "seed": row.seed,
                    "status": row.status,
                    "created_at": row.created_at.to_rfc3339(),
                })
            };
            let (sa, sb) = (summary(&a), summary(&b));
            let (_, ra) = self.runs.results(a).await?;
            let (_, rb) = self.runs.results(b).await?;
            let comparison = crate::compare::compare(sa, &ra, sb, &rb);
            Ok(spb::CompareSimulationsResponse {
                comparison_json: comparison.to_string(),
            })
        }
        .await;
        reply(res)
    }

    async fn inject_chaos(
        &self,
        req: Request<spb::InjectChaosRequest>,
    ) -> Result<Response<spb::InjectChaosResponse>, Status> {
        let was_forwarded = req.metadata().contains_key(FORWARDED);
        let r = req.into_inner();
        let res = on_owner!(
            self,
            &r.user_id,
            &r.simulation_id,
            was_forwarded,
            |row| async {
                let (at_s, applied) = self.runs.inject(row, &r.chaos_json).await?;
                Ok(spb::InjectChaosResponse {
                    applied_json: serde_json::to_string(&applied)
                        .map_err(|e| ServiceError::Internal(format!("chaos: {e}")))?,
                    at_s,
                })
            },
            |owner| owner.inject_chaos(forward(r.clone())),
        );
        reply(res)
    }

    async fn stop_simulation(
        &self,
        req: Request<spb::StopSimulationRequest>,
    ) -> Result<Response<spb::StopSimulationResponse>, Status> {
        let was_forwarded = req.metadata().contains_key(FORWARDED);
        let r = req.into_inner();
        let res = on_owner!(
            self,
            &r.user_id,
            &r.simulation_id,
            was_forwarded,
            |row| async {
                let row = self.runs.stop(row).await?;
                Ok(spb::StopSimulationResponse {
                    simulation_id: row.id.to_string(),
                    status: "stopping".into(),
                    stopped_at: chrono::Utc::now().timestamp(),
                })
            },
            |owner| owner.stop_simulation(forward(r.clone())),
        );
        reply(res)
    }

    async fn delete_simulation(
        &self,
        req: Request<spb::DeleteSimulationRequest>,
    ) -> Result<Response<spb::DeleteSimulationResponse>, Status> {
        let r = req.into_inner();
        let res = async {
            let row = self
                .authorize(&r.user_id, &r.simulation_id, Need::Control)
                .await?;
            self.runs.delete(row).await?;
            Ok(spb::DeleteSimulationResponse {})
        }
        .await;
        reply(res)
    }

    async fn control_simulation(
        &self,
        req: Request<spb::ControlSimulationRequest>,
    ) -> Result<Response<spb::GetSimulationStatusResponse>, Status> {
        let was_forwarded = req.metadata().contains_key(FORWARDED);
        let r = req.into_inner();
        let res = on_owner!(
            self,
            &r.user_id,
            &r.simulation_id,
            was_forwarded,
            |row| async {
                let change = match r.action.as_str() {
                    "pause" => Change::Pause,
                    "resume" => Change::Resume,
                    "speed" => Change::Speed(r.speed),
                    "panic" if self.fault_injection => Change::Panic,
                    other => {
                        return Err(ServiceError::invalid(
                            "action",
                            format!("action must be pause, resume or speed, not {other:?}"),
                        ))
                    }
                };
                self.runs.control(row, change).await?;
                let row = self.runs.row(&r.simulation_id).await?;
                Ok(status_pb(self.runs.status(row).await?))
            },
            |owner| owner.control_simulation(forward(r.clone())),
        );
        reply(res)
    }

    async fn get_simulation_status(
        &self,
        req: Request<spb::GetSimulationStatusRequest>,
    ) -> Result<Response<spb::GetSimulationStatusResponse>, Status> {
        let r = req.into_inner();
        let res = async {
            let row = self
                .authorize(&r.user_id, &r.simulation_id, Need::Watch)
                .await?;
            Ok(status_pb(self.runs.status(row).await?))
        }
        .await;
        reply(res)
    }

    async fn get_simulation_results(
        &self,
        req: Request<spb::GetSimulationResultsRequest>,
    ) -> Result<Response<spb::GetSimulationResultsResponse>, Status> {
        let r = req.into_inner();
        let res = async {
            let row = self
                .authorize(&r.user_id, &r.simulation_id, Need::Watch)
                .await?;
            let (row, summary) = self.runs.results(row).await?;
            Ok(spb::GetSimulationResultsResponse {
                simulation_id: row.id.to_string(),
                status: row.status,
                components: Vec::new(),
                end_to_end: None,
                summary_json: summary.to_string(),
                completed_at: row.completed_at.map_or(0, |t| t.timestamp()),
            })
        }
        .await;
        reply(res)
    }

    async fn get_live_metrics(
        &self,
        req: Request<spb::GetLiveMetricsRequest>,
    ) -> Result<Response<spb::GetLiveMetricsResponse>, Status> {
        let r = req.into_inner();
        let res = async {
            let row = self
                .authorize(&r.user_id, &r.simulation_id, Need::Watch)
                .await?;
            let id = row.id.to_string();
            let status = self.runs.status(row).await?;
            let (simulated_time, windows, json) = match status.live {
                Some(p) => (p.simulated_s, p.windows, p.last.map(|j| j.to_string())),
                None => {
                    // Finished (or live elsewhere): the latest stored window.
                    let (_, stored) = self.runs.windows(&status.row, 0, 1).await?;
                    let last = match stored.checked_sub(1) {
                        Some(i) => self.runs.windows(&status.row, i, 1).await?.0,
                        None => Vec::new(),
                    };
                    let json = last.into_iter().next().map(|(_, d)| d);
                    let end = json
                        .as_deref()
                        .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
                        .and_then(|v| v["end_s"].as_f64())
                        .unwrap_or(0.0);
                    (end, stored, json)
                }
            };
            let Some(window_json) = json else {
                return Err(ServiceError::Conflict {
                    code: "no_window_yet".into(),
                    field: "simulation_id".into(),
                    message: format!("simulation {id} has no window yet"),
                });
            };
            Ok(spb::GetLiveMetricsResponse {
                simulation_id: id,
                simulated_time,
                metrics: Default::default(),
                window_json,
                offset: crate::stream::entry_id(windows.saturating_sub(1)),
            })
        }
        .await;
        reply(res)
    }

    async fn get_simulation_windows(
        &self,
        req: Request<spb::GetSimulationWindowsRequest>,
    ) -> Result<Response<spb::GetSimulationWindowsResponse>, Status> {
        let r = req.into_inner();
        let res = async {
            let row = self
                .authorize(&r.user_id, &r.simulation_id, Need::Watch)
                .await?;
            let (windows, stored) = self.runs.windows(&row, r.from_index, r.limit).await?;
            Ok(spb::GetSimulationWindowsResponse {
                windows: windows
                    .into_iter()
                    .map(|(index, window_json)| spb::StoredWindow { index, window_json })
                    .collect(),
                status: row.status,
                stored_windows: stored,
                error: row.error.unwrap_or_default(),
            })
        }
        .await;
        reply(res)
    }
    async fn get_performance_analysis(
        &self,
        req: Request<spb::GetPerformanceAnalysisRequest>,
    ) -> Result<Response<spb::GetPerformanceAnalysisResponse>, Status> {
        let r = req.into_inner();
        let res = async {
            let row = self
                .authorize(&r.user_id, &r.simulation_id, Need::Watch)
                .await?;
            let id = row.id.to_string();
            let (_, report) = self.runs.results(row).await?;
            let analysis = &report["analysis"];
            let utilisation = |name: &str| {
                report["components"]
                    .as_array()
                    .and_then(|l| l.iter().find(|c| c["name"] == name))
                    .and_then(|c| c["utilisation"].as_f64())
                    .unwrap_or(0.0)
            };
            let saturation = |name: &str| {
                analysis["forecasts"]
                    .as_array()
                    .and_then(|l| l.iter().find(|f| f["component"] == name))
                    .and_then(|f| f["saturation_load_factor"].as_f64())
                    .unwrap_or(0.0)
            };
            let bottlenecks: Vec<spb::Bottleneck> = analysis["bottlenecks"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|b| {
                    let name = b["component"].as_str().unwrap_or_default();
                    spb::Bottleneck {
                        component_id: name.to_string(),
                        description: b["message"].as_str().unwrap_or_default().to_string(),
                        recommendation: b["suggestion"].as_str().unwrap_or_default().to_string(),
                        utilization: utilisation(name),
                        saturation_load: saturation(name),
                    }
                })
                .collect();
            Ok(spb::GetPerformanceAnalysisResponse {
                simulation_id: id,
                recommendations: bottlenecks
                    .iter()
                    .map(|b| b.recommendation.clone())
                    .filter(|r| !r.is_empty())
                    .collect(),
                bottlenecks,
                analysis_json: analysis.to_string(),
            })
        }
        .await;
        reply(res)
    }
    async fn validate_configuration(
        &self,
        req: Request<spb::ValidateConfigurationRequest>,
    ) -> Result<Response<spb::ValidateConfigurationResponse>, Status> {
        let r = req.into_inner();
        reply(crate::validation::validate(r.design_json).await.map(|v| {
            match v {
                Verdict::Valid { preview_json } => spb::ValidateConfigurationResponse {
                    valid: true,
                    problems: Vec::new(),
                    preview_json,
                },
                Verdict::Invalid(problems) => spb::ValidateConfigurationResponse {
                    valid: false,
                    problems: problems
                        .into_iter()
                        .map(|p| spb::ValidationProblem {
                            path: p.path,
                            message: p.message,
                        })
                        .collect(),
                    preview_json: String::new(),
                },
            }
        }))
    }
    async fn get_simulation_history(
        &self,
        req: Request<spb::GetSimulationHistoryRequest>,
    ) -> Result<Response<spb::GetSimulationHistoryResponse>, Status> {
        let r = req.into_inner();
        let res = async {
            let user = uuid_of("user_id", &r.user_id)?;
            let project = if r.project_id.is_empty() {
                None
            } else {
                Some(uuid_of("project_id", &r.project_id)?)
            };
            // A project's runs, whoever started them, for anyone who may view it; else the
            // caller's own runs.
            let starter = match project {
                Some(p) => {
                    let level = self.project_level(user, p).await.map_err(|e| match e {
                        ServiceError::NotFound(_) => {
                            ServiceError::NotFound(format!("no project {p}"))
                        }
                        e => e,
                    })?;
                    if !matches!(level.as_str(), "owner" | "editor" | "viewer") {
                        return Err(ServiceError::NotFound(format!("no project {p}")));
                    }
                    None
                }
                None => Some(user),
            };
            let (mut rows, next) = self
                .runs
                .history(starter, project, r.page_size, &r.page_token)
                .await?;
            if starter.is_some() {
                // One's own runs of projects one may still see (as `authorize` rules): a page
                // may come out shorter, its token still leads on.
                let mut hidden = std::collections::HashSet::new();
                let projects: std::collections::HashSet<uuid::Uuid> =
                    rows.iter().filter_map(|row| row.project_id).collect();
                for p in projects {
                    match self.project_level(user, p).await {
                        Err(ServiceError::NotFound(_)) => {
                            hidden.insert(p);
                        }
                        other => {
                            other?;
                        }
                    }
                }
                rows.retain(|row| row.project_id.is_none_or(|p| !hidden.contains(&p)));
            }
            Ok(spb::GetSimulationHistoryResponse {
                simulations: rows
                    .into_iter()
                    .map(|row| spb::SimulationSummary {
                        simulation_id: row.id.to_string(),
                        project_id: row.project_id.map(|p| p.to_string()).unwrap_or_default(),
                        status: row.status,
                        started_at: row.started_at.map_or(0, |t| t.timestamp()),
                        completed_at: row.completed_at.map_or(0, |t| t.timestamp()),
                        duration_seconds: row.duration_seconds.round() as i32,
                        name: row.name,
                        created_at: row.created_at.timestamp(),
                        seed: row.seed,
                        speed: row.speed,
                    })
                    .collect(),
                next_page_token: next,
            })
        }
        .await;
        reply(res)
    }
    async fn health_check(
        &self,
        _: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        Ok(Response::new(self.health.check("simulation", true).await))
    }
}
