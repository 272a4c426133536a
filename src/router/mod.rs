//! Model groups and the choice of a deployment for each attempt.
//!
//! Entries of `model_list` sharing a `model_name` form a group. [`Router::send`]
//! picks a deployment and makes the upstream call; it is the one place that
//! decides where a request goes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Deployment, RouterSettings};
use crate::error::Error;
use crate::proxy::upstream::{self, UpstreamResponse};

/// The deployments behind one public model name, in file order.
#[derive(Debug)]
pub struct Group {
    pub name: String,
    pub deployments: Vec<Arc<Deployment>>,
}

#[derive(Debug)]
pub struct Router {
    groups: Vec<Group>,
    by_name: HashMap<String, usize>,
    settings: RouterSettings,
}

/// What the router did for one request.
pub struct Routed {
    /// The deployment of the last attempt, if one was chosen.
    pub deployment: Option<Arc<Deployment>>,
    pub result: Result<UpstreamResponse, Error>,
}

impl Router {
    pub fn new(deployments: &[Arc<Deployment>], settings: RouterSettings) -> Self {
        let mut groups: Vec<Group> = vec![];
        let mut by_name: HashMap<String, usize> = HashMap::new();
        for d in deployments {
            match by_name.get(&d.model_name) {
                Some(&i) => groups[i].deployments.push(d.clone()),
                None => {
                    by_name.insert(d.model_name.clone(), groups.len());
                    groups.push(Group {
                        name: d.model_name.clone(),
                        deployments: vec![d.clone()],
                    });
                }
            }
        }
        Router {
            groups,
            by_name,
            settings,
        }
    }

    pub fn group(&self, name: &str) -> Option<&Group> {
        self.by_name.get(name).map(|&i| &self.groups[i])
    }

    /// Every group, in file order.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// The time allowed for `d` to answer (for a stream: to send its head).
    pub fn timeout(&self, d: &Deployment, stream: bool) -> Duration {
        let plain = d.timeout.unwrap_or(self.settings.timeout);
        if stream {
            d.stream_timeout
                .or(self.settings.stream_timeout)
                .unwrap_or(plain)
        } else {
            plain
        }
    }

    /// Choose a deployment of `group` and call it with the body `build` makes
    /// for that deployment.
    pub async fn send(
        &self,
        http: &reqwest::Client,
        group: &Group,
        stream: bool,
        build: impl Fn(&Deployment) -> Vec<u8>,
    ) -> Routed {
        let d = pick(&group.deployments).clone();
        let timeout = self.timeout(&d, stream);
        let result = upstream::send(http, &d, build(&d), stream, timeout).await;
        Routed {
            deployment: Some(d),
            result,
        }
    }
}

/// Weighted random choice: `weight`, else `rpm`, else `tpm`, else equal.
fn pick(deployments: &[Arc<Deployment>]) -> &Arc<Deployment> {
    if deployments.len() == 1 {
        return &deployments[0];
    }
    let weight = |d: &Deployment| {
        d.weight
            .or(d.rpm.map(|r| r as f64))
            .or(d.tpm.map(|t| t as f64))
            .unwrap_or(1.0)
    };
    let total: f64 = deployments.iter().map(|d| weight(d)).sum();
    if total <= 0.0 {
        return &deployments[fastrand::usize(..deployments.len())];
    }
    let mut x = fastrand::f64() * total;
    for d in deployments {
        x -= weight(d);
        if x < 0.0 {
            return d;
        }
    }
    &deployments[deployments.len() - 1]
}
