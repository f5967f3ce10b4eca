//! The order in which a module and everything it needs are loaded.

use std::collections::HashSet;
use std::path::PathBuf;

use serde::Serialize;

use crate::modules::{Compression, ModuleError, ModuleIndex, ModuleName, ModuleOptions};

/// Why a module is in a load plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepRole {
    /// A `pre:` soft dependency (modules.softdep) of a module after it.
    SoftPre,
    /// A dependency from modules.dep of the module asked for.
    Dependency,
    /// The module asked for.
    Target,
    /// A `post:` soft dependency of a module before it.
    SoftPost,
}

/// What loading a step takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlannedAction {
    /// Load this file with these parameters.
    Load {
        /// The module file.
        path: PathBuf,
        /// How the file is compressed.
        compression: Compression,
        /// The parameter string from the options, e.g. `debug=1 mode="a b"`; may be empty.
        parameters: String,
    },
    /// Built into the kernel: nothing to do.
    Builtin,
    /// Blacklisted by the options: never loaded.
    Blacklisted,
}

/// One module of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedStep {
    /// The module.
    pub module: ModuleName,
    /// Why it is there.
    pub role: StepRole,
    /// What loading it takes.
    pub action: PlannedAction,
}

/// Every module to load for one module, in load order: for each module its `pre:` soft
/// dependencies, then its modules.dep dependencies (deepest first), then itself, then its
/// `post:` soft dependencies. Each module appears once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadPlan {
    /// The module asked for.
    pub module: ModuleName,
    /// The steps in load order; the last one with role [`StepRole::Target`] is the module.
    pub steps: Vec<PlannedStep>,
    /// Soft dependency names that nothing provides (modprobe skips them too).
    pub missing_soft_dependencies: Vec<String>,
}

impl ModuleIndex {
    /// The plan to load `module` with `options` (parameters and blacklist).
    ///
    /// Fails when `module` is neither in modules.dep nor built in, or when a module it depends
    /// on has no modules.dep line of its own.
    pub fn load_plan(
        &self,
        module: &ModuleName,
        options: &ModuleOptions,
    ) -> Result<LoadPlan, ModuleError> {
        let mut planner = Planner {
            index: self,
            options,
            visited: HashSet::new(),
            plan: LoadPlan {
                module: module.clone(),
                steps: Vec::new(),
                missing_soft_dependencies: Vec::new(),
            },
        };
        planner.visit(module, StepRole::Target, None)?;
        Ok(planner.plan)
    }
}

struct Planner<'a> {
    index: &'a ModuleIndex,
    options: &'a ModuleOptions,
    visited: HashSet<ModuleName>,
    plan: LoadPlan,
}

impl Planner<'_> {
    /// Adds `module` after everything it needs. `needed_by` is the module whose modules.dep
    /// line named it, for the error when it has no line of its own.
    fn visit(
        &mut self,
        module: &ModuleName,
        role: StepRole,
        needed_by: Option<&ModuleName>,
    ) -> Result<(), ModuleError> {
        if !self.visited.insert(module.clone()) {
            return Ok(());
        }
        if self.index.is_builtin(module) && self.index.entry(module).is_none() {
            self.push(module, role, PlannedAction::Builtin);
            return Ok(());
        }
        if self.options.is_blacklisted(module) {
            self.push(module, role, PlannedAction::Blacklisted);
            return Ok(());
        }
        let index = self.index;
        let Some(entry) = index.entry(module) else {
            return Err(match needed_by {
                Some(needed_by) => ModuleError::DependencyNotInModulesDep {
                    module: module.clone(),
                    needed_by: needed_by.clone(),
                    index: index.dep_file(),
                },
                None => ModuleError::NotInModulesDep {
                    module: module.clone(),
                    index: index.dep_file(),
                },
            });
        };
        let soft = index.soft_dependencies(module);
        for name in soft.map(|soft| soft.pre.as_slice()).unwrap_or_default() {
            self.visit_soft(name, StepRole::SoftPre)?;
        }
        let dependency_role = match role {
            StepRole::Target => StepRole::Dependency,
            other => other,
        };
        for dependency in entry.dependencies.iter().rev() {
            self.visit(dependency, dependency_role, Some(module))?;
        }
        let action = PlannedAction::Load {
            path: index.dir().join(&entry.path),
            compression: entry.compression,
            parameters: self.options.parameters(module),
        };
        self.push(module, role, action);
        for name in soft.map(|soft| soft.post.as_slice()).unwrap_or_default() {
            self.visit_soft(name, StepRole::SoftPost)?;
        }
        Ok(())
    }

    /// Adds every module that provides the soft dependency `name` (a module name or alias).
    fn visit_soft(&mut self, name: &str, role: StepRole) -> Result<(), ModuleError> {
        let index = self.index;
        let providers: Vec<ModuleName> = index
            .resolve(name)
            .into_iter()
            .filter(|provider| index.entry(provider).is_some() || index.is_builtin(provider))
            .collect();
        if providers.is_empty() {
            if !self
                .plan
                .missing_soft_dependencies
                .iter()
                .any(|n| n == name)
            {
                self.plan.missing_soft_dependencies.push(name.to_owned());
            }
            return Ok(());
        }
        for provider in &providers {
            self.visit(provider, role, None)?;
        }
        Ok(())
    }

    fn push(&mut self, module: &ModuleName, role: StepRole, action: PlannedAction) {
        self.plan.steps.push(PlannedStep {
            module: module.clone(),
            role,
            action,
        });
    }
}
