//! Porcupine's key-value test data (`kv/cNN-{ok,bad}.txt`): one EDN map a line, with a `:key`.
//!
//! ```text
//! {:process 0, :type :invoke, :f :append, :key "0", :value "x 0 0 y"}
//! {:process 0, :type :ok, :f :get, :key "5", :value ""}
//! ```
//!
//! The syntax is Jepsen's EDN (see [`super::edn`]); what differs is the meaning: ops are `get`,
//! `put` and `append` on string keys, and a key never written reads as `""`, not nil. So this
//! format sets the default initial value of every key to `""` and defaults to the `kv` model.

use std::path::Path;

use crate::error::Result;
use crate::history::{Builder, Value};

pub(crate) fn parse(path: &Path, text: &str, builder: &mut Builder) -> Result<()> {
    builder.set_default_initial(Value::Str(String::new()));
    // Porcupine's own files take the fast path; anything else the general reader.
    let Some(events) = super::edn_fast::events(text) else {
        return super::edn::parse(path, text, builder);
    };
    for ev in events {
        builder.push(ev)?;
    }
    Ok(())
}
