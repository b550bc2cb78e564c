//! The black-box tests of sdsim, in one binary (linked once): real PostgreSQL and Redis, the
//! services started by the same `Application` as `sdsim up`, driven by real HTTP, WebSocket,
//! gRPC (tonic and Python grpcio) and SMTP peers. One module per area; the shared harness is
//! in `helpers/` (database, stack, WebSocket, tokens, SMTP).

mod helpers;

mod admission;
mod auth_mail;
mod auth_sessions;
mod breaker;
mod chaos;
mod collab;
mod config;
mod console;
mod discovery;
mod failover;
mod gateway_clients;
mod grpc_clients;
mod lifecycle;
mod limits;
mod live;
mod migrations;
mod openapi;
mod pool;
mod projects;
mod sim_cli;
mod simulations;
mod slice;
mod sockets;
