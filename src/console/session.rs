//! Console sessions, in memory: a random 256-bit id in an `HttpOnly`
//! cookie names a session that holds the user's access key and the CSRF
//! token the page must echo. The secret is never kept here (it is looked up
//! when a request needs it) and never reaches the page. A restart signs
//! everyone out, which is acceptable for a console.

use std::collections::HashMap;
use std::io;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// A session unused for this long is gone.
pub const IDLE: Duration = Duration::from_secs(12 * 3600);
/// A session older than this is gone, however busy.
pub const ABSOLUTE: Duration = Duration::from_secs(24 * 3600);
/// The most sessions kept; past it, sign-ins are refused until some expire,
/// so a client that signs in in a loop cannot grow memory without bound.
pub const MAX_SESSIONS: usize = 10_000;
/// The most sessions of one access key; its next sign-in ends its oldest.
pub const MAX_PER_KEY: usize = 32;

struct Session {
    access_key: String,
    csrf: String,
    secret_tag: [u8; 32],
    created: Instant,
    last_used: Instant,
}

impl Session {
    fn expired(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last_used) > IDLE || now.saturating_duration_since(self.created) > ABSOLUTE
    }
}

/// What a live session gives a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Live {
    pub access_key: String,
    pub csrf: String,
    /// [`secret_tag`] of the secret signed in with: a session ends when the
    /// key's secret changes (`tessera user rotate`).
    pub secret_tag: [u8; 32],
}

/// Sessions keyed by the SHA-256 of their id: a map lookup then reveals
/// nothing through its timing about the ids it holds.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<[u8; 32], Session>>,
}

/// 32 random bytes, hex: a session id or a CSRF token.
pub fn random_token() -> io::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(io::Error::other)?;
    Ok(hex::encode(bytes))
}

/// What a session keeps of the secret it was opened with: its SHA-256.
pub fn secret_tag(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    fn lock(&self) -> MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.map.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A new session for `access_key`: (its id, its CSRF token). A key keeps
    /// at most [`MAX_PER_KEY`] sessions (its oldest goes); when the server
    /// holds [`MAX_SESSIONS`] live ones, `None`: one user signing in over and
    /// over must not sign everyone else out.
    pub fn create(&self, access_key: &str, secret_tag: [u8; 32], now: Instant) -> io::Result<Option<(String, String)>> {
        let (id, csrf) = (random_token()?, random_token()?);
        let mut map = self.lock();
        let mine = map.values().filter(|s| s.access_key == access_key).count();
        if mine >= MAX_PER_KEY {
            let oldest = map.iter().filter(|(_, s)| s.access_key == access_key).min_by_key(|(_, s)| s.created);
            if let Some(key) = oldest.map(|(k, _)| *k) {
                map.remove(&key);
            }
        }
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| !s.expired(now));
        }
        if map.len() >= MAX_SESSIONS {
            return Ok(None);
        }
        let access_key = access_key.to_string();
        let session = Session { access_key, csrf: csrf.clone(), secret_tag, created: now, last_used: now };
        map.insert(digest(&id), session);
        Ok(Some((id, csrf)))
    }

    /// The live session `id` names, marked used now; an expired one is dropped.
    pub fn get(&self, id: &str, now: Instant) -> Option<Live> {
        let mut map = self.lock();
        let key = digest(id);
        let session = map.get_mut(&key)?;
        if session.expired(now) {
            map.remove(&key);
            return None;
        }
        session.last_used = now;
        Some(Live {
            access_key: session.access_key.clone(),
            csrf: session.csrf.clone(),
            secret_tag: session.secret_tag,
        })
    }

    pub fn remove(&self, id: &str) {
        self.lock().remove(&digest(id));
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAG: [u8; 32] = [7; 32];

    #[test]
    fn a_session_lives_while_used_and_ends_at_either_limit() {
        let sessions = Sessions::default();
        let t0 = Instant::now();
        let (id, csrf) = sessions.create("AK", TAG, t0).unwrap().unwrap();
        assert_eq!(id.len(), 64);
        assert_ne!(id, csrf);
        let live = sessions.get(&id, t0 + Duration::from_secs(3600)).unwrap();
        assert_eq!(live, Live { access_key: "AK".into(), csrf: csrf.clone(), secret_tag: TAG });
        assert_eq!(sessions.get("0000", t0), None, "an unknown id");
        // Used every 11 hours: idle never runs out, the 24 hours do.
        let mut t = t0;
        for _ in 0..2 {
            t += Duration::from_secs(11 * 3600);
            assert!(sessions.get(&id, t).is_some());
        }
        assert!(sessions.get(&id, t0 + ABSOLUTE + Duration::from_secs(1)).is_none(), "past 24 h");
        assert!(sessions.is_empty(), "dropped when found expired");
        let (idle, _) = sessions.create("AK", TAG, t0).unwrap().unwrap();
        assert!(sessions.get(&idle, t0 + IDLE + Duration::from_secs(1)).is_none(), "idle past 12 h");
        let (gone, _) = sessions.create("AK", TAG, t0).unwrap().unwrap();
        sessions.remove(&gone);
        assert!(sessions.get(&gone, t0).is_none(), "signed out");
    }

    #[test]
    fn a_key_keeps_its_newest_sessions_and_cannot_push_others_out() {
        let sessions = Sessions::default();
        let t0 = Instant::now();
        let (root, _) = sessions.create("ROOT", TAG, t0).unwrap().unwrap();
        let (first, _) = sessions.create("AK", TAG, t0).unwrap().unwrap();
        let mut last = String::new();
        for i in 1..=MAX_SESSIONS {
            let at = t0 + Duration::from_millis(i as u64);
            last = sessions.create("AK", TAG, at).unwrap().unwrap().0;
        }
        assert_eq!(sessions.len(), 1 + MAX_PER_KEY, "one key holds at most MAX_PER_KEY");
        assert!(sessions.get(&first, t0).is_none(), "its oldest was ended");
        assert!(sessions.get(&last, t0).is_some());
        assert!(sessions.get(&root, t0).is_some(), "another key's session is untouched");
    }

    #[test]
    fn a_full_server_refuses_new_sessions_instead_of_ending_others() {
        let sessions = Sessions::default();
        let t0 = Instant::now();
        let (first, _) = sessions.create("K0", TAG, t0).unwrap().unwrap();
        for i in 1..MAX_SESSIONS {
            assert!(sessions.create(&format!("K{i}"), TAG, t0).unwrap().is_some());
        }
        assert!(sessions.create("ANOTHER", TAG, t0).unwrap().is_none(), "full");
        assert!(sessions.get(&first, t0).is_some(), "no one was signed out");
        let later = t0 + IDLE + Duration::from_secs(1);
        assert!(sessions.create("ANOTHER", TAG, later).unwrap().is_some(), "expired sessions make room");
    }
}
