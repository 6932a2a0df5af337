//! What is built on the analysis: decisions taken from α ([`allocate`]), two models compared
//! layer by layer ([`compare`]), input-output Jacobians ([`jacobian`]), loss Hessians
//! ([`hessian`]) and the Lanczos iteration both use on operators known only by their products
//! ([`lanczos`]), the training-loop plugins ([`monitor`], and [`temp_balance`], which acts on
//! α), statistics over checkpoints ([`track`]), many models with policies and shards ([`zoo`])
//! and the deployment gate ([`health`]).
pub mod allocate;
pub mod compare;
pub mod health;
pub mod hessian;
pub mod jacobian;
pub mod lanczos;
pub mod monitor;
pub mod temp_balance;
pub mod track;
pub mod zoo;
