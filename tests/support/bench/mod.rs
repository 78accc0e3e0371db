//! What the benchmarks (`benches/`) measure with: statistics over rounds ([`stats`]), a child
//! process's CPU, memory and wake-ups ([`measure`], [`run`]), and a bare HTTP/1.1 server that
//! sends a watch body at the speed the client takes it ([`raw_server`]).

pub mod measure;
pub mod raw_server;
pub mod run;
pub mod stats;
