//! Which topics keep presence, and where their events are enqueued.

use wspush_domain::PresencePolicy;

use crate::settings::names::*;
use crate::settings::{Settings, SettingsError};

impl<F: Fn(&str) -> Option<String>> Settings<F> {
    /// The presence policy ([`PRESENCE_NAMESPACES`]): none unless namespaces are named.
    pub fn presence_policy(&self) -> Result<PresencePolicy, SettingsError> {
        let namespaces: Vec<String> = self
            .get(PRESENCE_NAMESPACES)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|namespace| !namespace.is_empty())
            .map(str::to_owned)
            .collect();
        PresencePolicy::new(namespaces).map_err(|error| SettingsError::Invalid {
            key: PRESENCE_NAMESPACES,
            value: self.raw(PRESENCE_NAMESPACES).unwrap_or_default(),
            reason: error.to_string(),
        })
    }

    /// The presence policy and the queue its events go to, for a socket function; `None`
    /// when presence is off. With presence on, [`QUEUE_URL`] is required.
    pub fn presence_events(&self) -> Result<Option<(PresencePolicy, String)>, SettingsError> {
        let policy = self.presence_policy()?;
        if !policy.is_on() {
            return Ok(None);
        }
        Ok(Some((policy, self.required(QUEUE_URL)?)))
    }
}

#[cfg(test)]
mod tests {
    use wspush_domain::ExternalId;

    use crate::settings::tests::settings;

    #[test]
    fn presence_is_off_unless_namespaces_are_named() {
        assert!(!settings(&[]).presence_policy().expect("valid").is_on());
        assert!(settings(&[]).presence_events().expect("valid").is_none());
        let policy = settings(&[("WSPUSH_PRESENCE_NAMESPACES", " room, lobby ,")])
            .presence_policy()
            .expect("valid");
        assert!(policy.covers(&ExternalId::parse("lobby:1").expect("valid")));
        assert!(!policy.covers(&ExternalId::parse("chat:1").expect("valid")));
    }

    #[test]
    fn presence_events_need_the_queue_and_a_bad_namespace_is_named() {
        let missing = settings(&[("WSPUSH_PRESENCE_NAMESPACES", "room")])
            .presence_events()
            .expect_err("no queue");
        assert!(
            missing.to_string().contains("WSPUSH_QUEUE_URL"),
            "{missing}"
        );
        let (_, queue) = settings(&[
            ("WSPUSH_PRESENCE_NAMESPACES", "room"),
            ("WSPUSH_QUEUE_URL", "https://sqs.example/q"),
        ])
        .presence_events()
        .expect("valid")
        .expect("on");
        assert_eq!(queue, "https://sqs.example/q");
        let bad = settings(&[("WSPUSH_PRESENCE_NAMESPACES", "room:1")])
            .presence_policy()
            .expect_err("bad");
        assert!(
            bad.to_string().contains("WSPUSH_PRESENCE_NAMESPACES"),
            "{bad}"
        );
    }
}
