//! Log set-up. Under systemd (stderr is the journal, `JOURNAL_STREAM`) entries go to journald
//! natively, with their fields queryable (`journalctl -u pickaxe MINER=...`); on a terminal,
//! plain text on stderr. Level: `RUST_LOG` wins, then the config's `log.level`, then `info`.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

/// Changes the level after a config reload (unless `RUST_LOG` pins it).
#[derive(Clone)]
pub struct LogHandle {
    filter: Option<reload::Handle<EnvFilter, Registry>>,
}

impl LogHandle {
    pub fn set_level(&self, level: Option<&str>) {
        if std::env::var_os("RUST_LOG").is_some() {
            return;
        }
        if let Some(handle) = &self.filter {
            let _ = handle.reload(filter(level));
        }
    }
}

fn filter(level: Option<&str>) -> EnvFilter {
    EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level.unwrap_or("info")))
        .unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Installs the subscriber. A second call (tests, the demo) keeps the first one.
pub fn init(level: Option<&str>) -> LogHandle {
    let (filter, handle) = reload::Layer::new(filter(level));
    let registry = tracing_subscriber::registry().with(filter);
    let installed = if under_journald() {
        match tracing_journald::layer() {
            Ok(journal) => registry
                .with(journal.with_syslog_identifier("pickaxe".into()))
                .try_init(),
            Err(_) => registry.with(plain_text()).try_init(),
        }
    } else {
        registry.with(plain_text()).try_init()
    };
    LogHandle {
        filter: installed.is_ok().then_some(handle),
    }
}

/// Plain text on stderr; colours only on a terminal (not in a file or a pipe).
fn plain_text<S>() -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use std::io::IsTerminal;
    tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
}

/// True when our stderr is the journal stream systemd told us about.
fn under_journald() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    match std::fs::metadata("/proc/self/fd/2") {
        Ok(meta) => meta.dev().to_string() == dev && meta.ino().to_string() == ino,
        Err(_) => false,
    }
}
