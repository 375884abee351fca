//! What the gateway has published for Home Assistant, and the three
//! moments it publishes: at start, after a reload (only what changed, and
//! deletes for what is gone), and when Home Assistant's birth message says
//! `online` (everything again: a Home Assistant that restarted while the
//! gateway stayed connected may have lost entities whose config it read
//! before, e.g. when the broker does not keep retained messages).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc;

use super::{birth_topic, changes, configs};
use crate::config::Config;
use crate::uplink::{Heard, Hooks, Uplink};

/// Birth messages waiting to be read; more are dropped by the uplink,
/// which is harmless: one is enough to send everything again.
const HEARD_CAPACITY: usize = 8;

/// The discovery configs the gateway keeps retained, and the uplink that
/// keeps them.
pub struct Discovery {
    uplink: Arc<Uplink>,
    published: Mutex<BTreeMap<String, Vec<u8>>>,
    /// The birth topic subscribed to at start (`None` when discovery was
    /// off then: the subscription is made per connection from the hooks,
    /// which are fixed at start).
    birth: Option<String>,
}

impl Discovery {
    /// The uplink hooks discovery needs when `config` turns it on: a
    /// subscription to the birth topic, and where what comes on it goes.
    pub fn hooks(config: &Config) -> (Hooks, Option<mpsc::Receiver<Heard>>) {
        let Some(ha) = &config.homeassistant else {
            return (Hooks::default(), None);
        };
        let (heard, receiver) = mpsc::channel(HEARD_CAPACITY);
        let hooks = Hooks {
            subscribe: vec![birth_topic(&ha.prefix)],
            heard: Some(heard),
            ..Hooks::default()
        };
        (hooks, Some(receiver))
    }

    /// Publishes (retained, through `uplink`) the configs `config` asks
    /// for; none when discovery is off.
    pub fn start(config: &Config, uplink: Arc<Uplink>) -> Arc<Self> {
        let discovery = Arc::new(Self {
            uplink,
            published: Mutex::default(),
            birth: config
                .homeassistant
                .as_ref()
                .map(|ha| birth_topic(&ha.prefix)),
        });
        discovery.update(config);
        discovery
    }

    /// After a reload: publishes the configs that are new or changed and
    /// an empty retained config for each one gone (a removed sensor or
    /// field, or discovery turned off).
    pub fn update(&self, config: &Config) {
        let new = configs(config);
        let birth = config
            .homeassistant
            .as_ref()
            .map(|ha| birth_topic(&ha.prefix));
        if birth.is_some() && birth != self.birth {
            tracing::warn!(
                listening = ?self.birth,
                "Home Assistant discovery was turned on, or its prefix changed, by a reload: the configs are sent, but the birth message on the new prefix is listened for only after a service restart"
            );
        }
        let mut published = self
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let changes = changes(&published, &new);
        let (gone, sent) = changes.iter().fold((0, 0), |(gone, sent), (_, payload)| {
            if payload.is_empty() {
                (gone + 1, sent)
            } else {
                (gone, sent + 1)
            }
        });
        if gone + sent > 0 {
            tracing::info!(
                entities = new.len(),
                sent,
                removed = gone,
                "Home Assistant discovery configs"
            );
        }
        for (topic, payload) in changes {
            self.uplink.set_retained(topic, payload);
        }
        *published = new;
    }

    /// Sends every current config again (Home Assistant said `online`).
    /// The deletes of earlier reloads stay in the uplink's retained values
    /// and go out again at every reconnect.
    pub fn resend(&self) {
        let published = self
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        tracing::info!(
            entities = published.len(),
            "Home Assistant is online: discovery configs sent again"
        );
        for (topic, payload) in published.iter() {
            self.uplink.set_retained(topic.clone(), payload.clone());
        }
    }

    /// True for Home Assistant's birth message.
    fn is_birth(&self, heard: &Heard) -> bool {
        self.birth.as_deref() == Some(heard.topic.as_str())
            && heard.payload.trim_ascii() == b"online"
    }
}

/// Sends the configs again at each birth message, until `heard` closes
/// (the uplink is gone). Run it as a background loop.
pub async fn listen(discovery: Arc<Discovery>, mut heard: mpsc::Receiver<Heard>) {
    while let Some(message) = heard.recv().await {
        if discovery.is_birth(&message) {
            discovery.resend();
        }
    }
}
