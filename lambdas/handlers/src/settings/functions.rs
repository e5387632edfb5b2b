//! What each function reads, named once: one struct per function, read whole at cold start.

use wspush_domain::{HistoryPolicy, PresencePolicy, SubscriptionPolicy};
use wspush_ports::{ContinuationConfig, LedgerConfig, PushConfig};

use crate::settings::names::{EMPTY_LISTS_MEAN_EVERYONE, FUNCTION_NAME, QUEUE_URL};
use crate::settings::{IdentityPlan, ManagementApi, Settings, SettingsError};

/// What one function reads, as a whole.
pub trait FunctionSettings: Sized {
    /// Through `settings`.
    fn read<F: Fn(&str) -> Option<String>>(settings: &Settings<F>) -> Result<Self, SettingsError>;

    /// From the process environment.
    fn from_env() -> Result<Self, SettingsError> {
        Self::read(&Settings::from_env())
    }
}

/// What the connect function reads: the table, and where the user's identity comes from.
#[derive(Debug)]
pub struct ConnectSettings {
    /// The connections table.
    pub table: String,
    /// A token, or the authorizer: [`IdentityPlan::resolve`] reads the keys that live
    /// outside the settings (a JWKS URL, a secret's ARN) at cold start.
    pub identity: IdentityPlan,
}

impl FunctionSettings for ConnectSettings {
    fn read<F: Fn(&str) -> Option<String>>(settings: &Settings<F>) -> Result<Self, SettingsError> {
        Ok(Self {
            table: settings.table()?,
            identity: settings.identity_plan()?,
        })
    }
}

/// What the disconnect function reads: the table, and the presence whose leaves it
/// enqueues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisconnectSettings {
    /// The connections table.
    pub table: String,
    /// Which topics keep presence, and the queue their events go to; `None` when off.
    pub presence: Option<(PresencePolicy, String)>,
}

impl FunctionSettings for DisconnectSettings {
    fn read<F: Fn(&str) -> Option<String>>(settings: &Settings<F>) -> Result<Self, SettingsError> {
        Ok(Self {
            table: settings.table()?,
            presence: settings.presence_events()?,
        })
    }
}

/// What the subscribe function reads: the table, the subscription policy, and the history
/// a subscribe `since` a position is caught up from.
#[derive(Debug, Clone)]
pub struct SubscribeSettings {
    /// The connections table.
    pub table: String,
    /// What `subscribe` allows.
    pub policy: SubscriptionPolicy,
    /// Which streams keep history; with it on, the `@connections` API that recovered
    /// messages are posted through.
    pub history: Option<(HistoryPolicy, ManagementApi)>,
    /// Which topics keep presence, and the queue their events go to; `None` when off.
    pub presence: Option<(PresencePolicy, String)>,
}

impl FunctionSettings for SubscribeSettings {
    fn read<F: Fn(&str) -> Option<String>>(settings: &Settings<F>) -> Result<Self, SettingsError> {
        let history = settings.history_policy()?;
        let history = match history.is_on() {
            true => Some((history, settings.management_api()?)),
            false => None,
        };
        Ok(Self {
            table: settings.table()?,
            policy: settings.subscription_policy()?,
            history,
            presence: settings.presence_events()?,
        })
    }
}

/// What the pusher reads.
#[derive(Debug, Clone)]
pub struct PusherSettings {
    /// The connections table (also the request ledger).
    pub table: String,
    /// The `@connections` API: its endpoint and transport.
    pub management_api: ManagementApi,
    /// How pushes fan out.
    pub push: PushConfig,
    /// The notification queue's URL and how continuations are made; `None` without a queue.
    pub continuations: Option<(String, ContinuationConfig)>,
    /// How the ledger is used; `None` when it is turned off.
    pub ledger: Option<LedgerConfig>,
    /// Where the EMF metrics go: the namespace and the function's name; `None` when off.
    pub metrics: Option<(String, String)>,
    /// Whether a request whose lists are all empty is a broadcast (the Python pusher's
    /// reading), [`EMPTY_LISTS_MEAN_EVERYONE`].
    pub empty_lists_mean_everyone: bool,
    /// Which streams keep history (off unless namespaces are named).
    pub history: HistoryPolicy,
    /// Which topics keep presence (off unless namespaces are named): the leaves of the
    /// connections it prunes go to the queue of `continuations`, which it then requires.
    pub presence: PresencePolicy,
}

impl FunctionSettings for PusherSettings {
    fn read<F: Fn(&str) -> Option<String>>(settings: &Settings<F>) -> Result<Self, SettingsError> {
        let table = settings.table()?;
        let push = settings.push_config()?;
        // Read (and checked) even without a queue, so that a typo shows before one is added.
        let continuation_config = settings.continuation_config()?;
        let ledger = settings.ledger_config()?;
        let management_api = settings.management_api()?;
        let metrics = settings.metrics_namespace()?.map(|namespace| {
            let function = settings
                .raw(FUNCTION_NAME)
                .unwrap_or_else(|| "pusher".to_owned());
            (namespace, function)
        });
        let presence = settings.presence_policy()?;
        if presence.is_on() && settings.queue_url().is_none() {
            return Err(SettingsError::Missing(QUEUE_URL));
        }
        Ok(Self {
            presence,
            table,
            management_api,
            push,
            continuations: settings
                .queue_url()
                .map(|queue_url| (queue_url, continuation_config)),
            ledger,
            metrics,
            empty_lists_mean_everyone: settings.switch(EMPTY_LISTS_MEAN_EVERYONE, false)?,
            history: settings.history_policy()?,
        })
    }
}
