//! `include: [other.yaml]`: config files merged into the one that names
//! them, as LiteLLM 1.108.7 does (`proxy/common_utils/config_includes.py`):
//!
//! - each entry is a path relative to the file that declares it (a file
//!   found only next to the root config is read too, with a warning);
//! - files are read breadth-first, each at most once (cycles end there);
//! - merging is by top-level key: a list extends the list before it (so
//!   `model_list` entries add up), any other value replaces the one before.
//!
//! Each top-level value remembers the file it came from, so that a problem
//! in an included entry names that file.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use super::compat::Kind;
use super::{Issue, yaml};

/// Config files read in one load, the root included: a bound on a chain of
/// includes written by mistake.
pub const MAX_FILES: usize = 64;
/// Largest config file read.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Where each top-level value came from (files by index, 0 the root).
#[derive(Debug, Default)]
pub struct Origins {
    files: Vec<PathBuf>,
    /// For a list: `(first index, file)` runs; otherwise one run at 0.
    keys: HashMap<String, Vec<(usize, usize)>>,
}

impl Origins {
    /// The included files (not the root), in the order they were read.
    pub fn included(&self) -> &[PathBuf] {
        self.files.get(1..).unwrap_or_default()
    }

    /// The included file a path such as `model_list[3].litellm_params`
    /// points into, if it is not the root.
    pub fn file_of(&self, path: &str) -> Option<&Path> {
        let end = path.find(['.', '[']).unwrap_or(path.len());
        let runs = self.keys.get(&path[..end])?;
        let index = path[end..]
            .strip_prefix('[')
            .and_then(|r| r.split(']').next())
            .and_then(|i| i.parse::<usize>().ok())
            .unwrap_or(0);
        let file = runs
            .iter()
            .rev()
            .find(|(start, _)| *start <= index)
            .map(|(_, f)| *f)?;
        (file != 0).then(|| self.files[file].as_path())
    }
}

/// Read one config file: bounded, parsed with PyYAML's rules. Duplicate
/// keys become warnings naming `label` when it is not the root.
pub fn read(path: &Path, label: Option<&Path>, warnings: &mut Vec<Issue>) -> Result<Value, String> {
    let size = std::fs::metadata(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(format!(
            "cannot read {}: {size} bytes is over the {MAX_FILE_BYTES}-byte limit for a config file",
            path.display()
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let parsed = yaml::parse(&text).map_err(|e| match label {
        Some(f) => format!("{}: not valid YAML: {e}", f.display()),
        None => format!("not valid YAML: {e}"),
    })?;
    for (key_path, line) in parsed.duplicates {
        let file = label
            .map(|f| format!(" of {}", f.display()))
            .unwrap_or_default();
        warnings.push(Issue {
            path: key_path,
            message: format!(
                "duplicate key at line {line}{file}: the last value is used (as PyYAML does)"
            ),
            kind: Kind::Loading,
        });
    }
    Ok(parsed.value)
}

/// Merge every file `root` includes (recursively) into it. `root_path` is
/// the root config's path. Problems go to `errors`; notes to `warnings`.
pub fn merge(
    root: Value,
    root_path: &Path,
    errors: &mut Vec<Issue>,
    warnings: &mut Vec<Issue>,
) -> (Value, Origins) {
    let mut origins = Origins {
        files: vec![root_path.to_owned()],
        keys: HashMap::new(),
    };
    let Value::Mapping(mut config) = root else {
        return (root, origins);
    };
    for key in config.keys() {
        if let Some(k) = key.as_str() {
            origins.keys.insert(k.to_owned(), vec![(0, 0)]);
        }
    }
    let mut loaded: HashSet<PathBuf> = HashSet::from([identity(root_path)]);
    let mut pending: VecDeque<(String, usize)> = VecDeque::new();
    queue(&mut config, 0, &mut pending, errors);
    let root_dir = root_path.parent().unwrap_or(Path::new("."));
    while let Some((entry, declared_in)) = pending.pop_front() {
        let declaring = origins.files[declared_in].clone();
        let Some(location) = locate(&entry, &declaring, root_dir, warnings) else {
            errors.push(Issue {
                path: "include".to_owned(),
                message: format!(
                    "included file not found: {} (named in {})",
                    declaring
                        .parent()
                        .unwrap_or(Path::new("."))
                        .join(&entry)
                        .display(),
                    declaring.display()
                ),
                kind: Kind::Invalid,
            });
            continue;
        };
        if !loaded.insert(identity(&location)) {
            continue;
        }
        if origins.files.len() >= MAX_FILES {
            errors.push(Issue {
                path: "include".to_owned(),
                message: format!("more than {MAX_FILES} config files through include"),
                kind: Kind::Invalid,
            });
            break;
        }
        let included = match read(&location, Some(&location), warnings) {
            Ok(Value::Null) => Mapping::new(),
            Ok(Value::Mapping(m)) => m,
            Ok(_) => {
                errors.push(Issue {
                    path: "include".to_owned(),
                    message: format!(
                        "included config file is not a YAML mapping: {}",
                        location.display()
                    ),
                    kind: Kind::Invalid,
                });
                continue;
            }
            Err(e) => {
                errors.push(Issue {
                    path: "include".to_owned(),
                    message: e,
                    kind: Kind::Invalid,
                });
                continue;
            }
        };
        let file = origins.files.len();
        origins.files.push(location.clone());
        let mut included = included;
        queue(&mut included, file, &mut pending, errors);
        for (key, value) in included {
            let name = key.as_str().map(str::to_owned);
            match (config.get_mut(&key), value) {
                (Some(Value::Sequence(base)), Value::Sequence(more)) => {
                    if let Some(n) = &name {
                        origins
                            .keys
                            .entry(n.clone())
                            .or_default()
                            .push((base.len(), file));
                    }
                    base.extend(more);
                }
                (existing, value) => {
                    if let (Some(_), Some(n)) = (existing, &name) {
                        warnings.push(Issue {
                            path: n.clone(),
                            message: format!(
                                "replaced by the one in {} (include extends lists and replaces other values)",
                                location.display()
                            ),
                            kind: Kind::Loading,
                        });
                    }
                    if let Some(n) = &name {
                        origins.keys.insert(n.clone(), vec![(0, file)]);
                    }
                    config.insert(key, value);
                }
            }
        }
    }
    (Value::Mapping(config), origins)
}

/// Take `include` out of `config` and queue its entries.
fn queue(
    config: &mut Mapping,
    file: usize,
    pending: &mut VecDeque<(String, usize)>,
    errors: &mut Vec<Issue>,
) {
    let Some(value) = config.remove("include") else {
        return;
    };
    let entries = match value {
        Value::Sequence(items) if items.iter().all(Value::is_string) => items,
        Value::Null => return,
        _ => {
            errors.push(Issue {
                path: "include".to_owned(),
                message: "'include' must be a list of file paths".to_owned(),
                kind: Kind::Invalid,
            });
            return;
        }
    };
    for entry in entries {
        if let Value::String(s) = entry {
            pending.push_back((s, file));
        }
    }
}

/// The file an include entry names: next to the file that declares it,
/// else (for configs written before nested includes resolved that way)
/// next to the root config, with a warning.
fn locate(
    entry: &str,
    declaring: &Path,
    root_dir: &Path,
    warnings: &mut Vec<Issue>,
) -> Option<PathBuf> {
    let declared_dir = declaring.parent().unwrap_or(Path::new("."));
    let declared = declared_dir.join(entry);
    let from_root = root_dir.join(entry);
    if identity(&declared) == identity(&from_root) || !from_root.exists() {
        return declared.exists().then_some(declared);
    }
    if !declared.exists() {
        warnings.push(Issue {
            path: "include".to_owned(),
            message: format!(
                "'{entry}' named in {} is not next to it; {} was read instead",
                declaring.display(),
                from_root.display()
            ),
            kind: Kind::Loading,
        });
        return Some(from_root);
    }
    warnings.push(Issue {
        path: "include".to_owned(),
        message: format!(
            "'{entry}' named in {} matches two files: {} was read, {} was not",
            declaring.display(),
            declared.display(),
            from_root.display()
        ),
        kind: Kind::Loading,
    });
    Some(declared)
}

/// A path's identity for "read once": the file itself when it exists.
fn identity(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}
