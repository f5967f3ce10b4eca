//! Loading a module with everything it needs, step by step, with a report of each step.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::modules::loader::{Inserted, insert_module_file};
use crate::modules::{
    ModuleError, ModuleIndex, ModuleLoader, ModuleName, ModuleOptions, PlannedAction, StepRole,
    error_chain,
};

/// What happened to one module of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// The kernel took it now.
    Loaded,
    /// It was in the kernel before (sysfs said so, or the kernel answered `EEXIST`).
    AlreadyLoaded,
    /// Built into the kernel: nothing to load.
    Builtin,
    /// Blacklisted by the options: not loaded.
    Blacklisted,
    /// Loading it failed; [`LoadOutcome::error`] says why.
    Failed,
}

impl fmt::Display for StepStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StepStatus::Loaded => "loaded",
            StepStatus::AlreadyLoaded => "already loaded",
            StepStatus::Builtin => "built in",
            StepStatus::Blacklisted => "blacklisted",
            StepStatus::Failed => "failed",
        })
    }
}

/// One module that was handled, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadStep {
    /// The module.
    pub module: ModuleName,
    /// Why it was in the plan.
    pub role: StepRole,
    /// What happened to it.
    pub status: StepStatus,
}

/// The report of [`load_with_dependencies`]. Serializes with `error` as one line of text
/// (the error and its causes) or `null`.
#[derive(Debug, Serialize)]
pub struct LoadOutcome {
    /// The module asked for.
    pub module: ModuleName,
    /// The modules handled, in order; the steps after a failure are not there.
    pub steps: Vec<LoadStep>,
    /// Soft dependency names nothing provides; skipped, as modprobe does.
    pub missing_soft_dependencies: Vec<String>,
    /// Soft dependencies that failed to load. Like modprobe, loading goes on without them: a
    /// soft dependency is an optimisation (e.g. `crct10dif_pclmul`, which fails with ENODEV on
    /// a CPU without PCLMULQDQ), never a requirement.
    #[serde(serialize_with = "serialize_errors")]
    pub soft_dependency_errors: Vec<ModuleError>,
    /// Why loading stopped; `None` when every step went through.
    #[serde(serialize_with = "serialize_error")]
    pub error: Option<ModuleError>,
}

impl LoadOutcome {
    /// What happened to the module asked for; `None` when loading stopped before it.
    pub fn status(&self) -> Option<StepStatus> {
        self.steps
            .iter()
            .find(|step| step.role == StepRole::Target)
            .map(|step| step.status)
    }

    /// Whether the module is in the kernel now (loaded, already loaded or built in).
    pub fn is_available(&self) -> bool {
        matches!(
            self.status(),
            Some(StepStatus::Loaded | StepStatus::AlreadyLoaded | StepStatus::Builtin)
        )
    }
}

/// One line: `MODULE STATUS`, then the other steps in parentheses, then the error. E.g.
/// `virtio_net loaded (virtio_ring loaded, virtio already loaded, failover loaded,
/// net_failover loaded)` or `e1000 not loaded: cannot load module e1000 from PATH: EPERM: ...`.
impl fmt::Display for LoadOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status() {
            Some(status) => write!(f, "{} {status}", self.module)?,
            None => write!(f, "{} not loaded", self.module)?,
        }
        let others: Vec<String> = self
            .steps
            .iter()
            .filter(|step| step.role != StepRole::Target)
            .map(|step| format!("{} {}", step.module, step.status))
            .collect();
        if !others.is_empty() {
            write!(f, " ({})", others.join(", "))?;
        }
        if let Some(error) = &self.error {
            write!(f, ": {}", error_chain(error))?;
        }
        Ok(())
    }
}

fn serialize_errors<S: Serializer>(
    errors: &[ModuleError],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(errors.iter().map(|error| error_chain(error)))
}

fn serialize_error<S: Serializer>(
    error: &Option<ModuleError>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match error {
        Some(error) => serializer.serialize_some(&error_chain(error)),
        None => serializer.serialize_none(),
    }
}

/// Loads `module` the way modprobe does: its plan ([`ModuleIndex::load_plan`]) in order,
/// skipping what is built in or loaded already, with the parameters from `options`.
///
/// A blacklisted module is not loaded; when a module that others need is blacklisted, they
/// are not loaded either (blacklisted soft dependencies are just skipped). Loading stops at the
/// first failure of the module or a hard dependency, with the error naming the module and its
/// file; a soft dependency that fails is recorded in `soft_dependency_errors` and loading goes
/// on, as modprobe does. Never panics; every problem
/// is in the outcome.
pub fn load_with_dependencies(
    index: &ModuleIndex,
    module: &ModuleName,
    options: &ModuleOptions,
    loader: &mut dyn ModuleLoader,
) -> LoadOutcome {
    let mut outcome = LoadOutcome {
        module: module.clone(),
        steps: Vec::new(),
        missing_soft_dependencies: Vec::new(),
        soft_dependency_errors: Vec::new(),
        error: None,
    };
    let plan = match index.load_plan(module, options) {
        Ok(plan) => plan,
        Err(error) => {
            outcome.error = Some(error);
            return outcome;
        }
    };
    outcome.missing_soft_dependencies = plan.missing_soft_dependencies;
    for step in plan.steps {
        let (status, error) = match step.action {
            PlannedAction::Builtin => (StepStatus::Builtin, None),
            PlannedAction::Blacklisted => match step.role {
                StepRole::Dependency => {
                    let error = ModuleError::DependencyBlacklisted {
                        module: step.module.clone(),
                        needed_by: module.clone(),
                    };
                    (StepStatus::Blacklisted, Some(error))
                }
                StepRole::Target | StepRole::SoftPre | StepRole::SoftPost => {
                    (StepStatus::Blacklisted, None)
                }
            },
            PlannedAction::Load {
                path,
                compression,
                parameters,
            } => match loader.is_loaded(&step.module) {
                Ok(true) => (StepStatus::AlreadyLoaded, None),
                Ok(false) => {
                    match insert_module_file(loader, &step.module, &path, compression, &parameters)
                    {
                        Ok(Inserted::Loaded) => (StepStatus::Loaded, None),
                        Ok(Inserted::AlreadyLoaded) => (StepStatus::AlreadyLoaded, None),
                        Err(error) => (StepStatus::Failed, Some(error)),
                    }
                }
                Err(error) => (StepStatus::Failed, Some(error)),
            },
        };
        let is_soft = matches!(step.role, StepRole::SoftPre | StepRole::SoftPost);
        outcome.steps.push(LoadStep {
            module: step.module,
            role: step.role,
            status,
        });
        match error {
            Some(error) if is_soft => outcome.soft_dependency_errors.push(error),
            Some(error) => {
                outcome.error = Some(error);
                break;
            }
            None if step.role == StepRole::Target && status == StepStatus::Blacklisted => break,
            None => {}
        }
    }
    outcome
}
