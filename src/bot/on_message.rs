//! A person's message in a channel: analyse it and, when it is a deal update, log an
//! observation (themes, class, score — not the text).

use crate::engine::Engine;
use crate::slack::payloads::MessageEvent;
use crate::store::{Effects, NewObservation, ObservationSource};

pub fn on_message(engine: &Engine, event: &MessageEvent) -> Effects {
    let text = event.text.as_str();
    let analysis = engine.analyze(text);
    if !analysis.is_deal_update {
        return Effects::default();
    }
    let Some(user) = event.user.as_ref() else {
        return Effects::default();
    };
    let observation = NewObservation {
        channel_id: event.channel.as_str().to_owned(),
        user_id: user.as_str().to_owned(),
        message_ts: Some(event.ts.clone()),
        source: ObservationSource::Message,
        class: analysis.class,
        score: analysis.score,
        account: analysis.account.clone(),
        themes: analysis.themes.iter().map(|hit| hit.theme).collect(),
        dedupe_key: format!("message:{}:{}", event.channel.as_str(), event.ts),
        text: None,
    };
    Effects {
        observation: Some(observation),
        outbox: Vec::new(),
    }
}
