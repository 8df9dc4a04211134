//! The in-memory object store behind the simulated API server.
//!
//! Invariants:
//! - one global, strictly increasing resourceVersion; every committed change gets the next one
//!   and is broadcast to watchers in that order while the write lock is held;
//! - objects are kept as their serialized JSON bytes ([`Entry::bytes`]) plus a compact index
//!   (name, labels, the few fields selectors need, owner uids); they are decoded to
//!   `serde_json::Value` only to be mutated;
//! - a bounded ring of recent events per resource serves watch resumption; older versions get
//!   `410 Gone`;
//! - a slow watcher never blocks a writer: when its channel is full it is dropped.
//!
//! Deletion semantics (finalizers, graceful pod deletion, ownerReference garbage collection
//! with Background/Foreground/Orphan propagation, namespace lifecycle) live here too, run by a
//! worker task spawned with [`Store::spawn_workers`].

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::RwLock;
use serde_json::{Map, Value, json};
use thiserror::Error;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::resources::{RESOURCES, ResourceDef, idx};
use crate::selectors::{FieldSelector, LabelSelector};

/// A store failure, mapped to a Kubernetes `Status` by the server.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The object does not exist.
    #[error("{resource} \"{name}\" not found")]
    NotFound {
        /// Qualified resource (`pods`, `deployments.apps`).
        resource: String,
        /// Object name.
        name: String,
    },
    /// The object already exists.
    #[error("{resource} \"{name}\" already exists")]
    AlreadyExists {
        /// Qualified resource.
        resource: String,
        /// Object name.
        name: String,
    },
    /// Optimistic-concurrency or precondition failure.
    #[error("Operation cannot be fulfilled on {resource} \"{name}\": {reason}")]
    Conflict {
        /// Qualified resource.
        resource: String,
        /// Object name.
        name: String,
        /// Why.
        reason: String,
    },
    /// Creating in a namespace that is being deleted.
    #[error(
        "{resource} \"{name}\" is forbidden: unable to create new content in namespace {namespace} because it is being terminated"
    )]
    NamespaceTerminating {
        /// Qualified resource.
        resource: String,
        /// Object name.
        name: String,
        /// Namespace.
        namespace: String,
    },
    /// The requested resourceVersion is older than the retained event window.
    #[error("too old resource version: {requested} ({oldest})")]
    Gone {
        /// Requested version.
        requested: u64,
        /// Oldest version still available.
        oldest: u64,
    },
    /// The object is invalid (caught by store invariants).
    #[error("{0}")]
    Invalid(String),
    /// Internal failure (undecodable stored object).
    #[error("internal error: {0}")]
    Internal(String),
}

/// Type of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// ADDED.
    Added,
    /// MODIFIED.
    Modified,
    /// DELETED.
    Deleted,
}

impl EventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One stored object version: serialized bytes plus the index selectors need.
#[derive(Debug)]
pub struct Entry {
    /// `namespace/name` or `name`.
    pub key: Box<str>,
    /// Length of the namespace prefix (0 for cluster-scoped).
    ns_len: u16,
    /// resourceVersion of this version.
    pub rv: u64,
    /// metadata.uid.
    pub uid: Box<str>,
    /// Labels.
    pub labels: Arc<[(Box<str>, Box<str>)]>,
    /// Selectable fields of the resource.
    pub fields: Arc<[(&'static str, Box<str>)]>,
    /// uids of owners (metadata.ownerReferences).
    pub owners: Box<[Box<str>]>,
    /// metadata.deletionTimestamp is set.
    pub deleting: bool,
    /// Has the `foregroundDeletion` finalizer.
    pub foreground: bool,
    /// The object as JSON.
    pub bytes: Bytes,
}

impl Entry {
    /// Namespace ("" for cluster-scoped).
    pub fn namespace(&self) -> &str {
        &self.key[..self.ns_len as usize]
    }

    /// Name.
    pub fn name(&self) -> &str {
        if self.ns_len == 0 {
            &self.key
        } else {
            &self.key[self.ns_len as usize + 1..]
        }
    }

    /// A label value.
    pub fn label(&self, k: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(a, _)| &**a == k)
            .map(|(_, v)| &**v)
    }

    /// A selectable field value.
    pub fn field(&self, k: &str) -> Option<&str> {
        match k {
            "metadata.name" => Some(self.name()),
            "metadata.namespace" => Some(self.namespace()),
            _ => self.fields.iter().find(|(a, _)| *a == k).map(|(_, v)| &**v),
        }
    }

    /// Decodes the stored bytes.
    pub fn value(&self) -> Result<Value, StoreError> {
        serde_json::from_slice(&self.bytes).map_err(|e| StoreError::Internal(e.to_string()))
    }
}

/// Entries of `table` in key order, starting after `after` (exclusive) or else at the start of
/// the `prefix` (`"<namespace>/"`) key range, and ending with that range.
fn scan<'a>(
    table: &'a BTreeMap<Box<str>, Arc<Entry>>,
    prefix: Option<&'a str>,
    after: Option<&'a str>,
) -> impl Iterator<Item = (&'a Box<str>, &'a Arc<Entry>)> + 'a {
    let start = match (after, prefix) {
        (Some(c), _) => Bound::Excluded(c),
        (None, Some(p)) => Bound::Included(p),
        (None, None) => Bound::Unbounded,
    };
    table
        .range::<str, _>((start, Bound::Unbounded))
        .take_while(move |(k, _)| prefix.is_none_or(|p| k.starts_with(p)))
}

/// Builds the store key of an object.
pub fn make_key(namespace: &str, name: &str) -> String {
    if namespace.is_empty() {
        name.to_string()
    } else {
        format!("{namespace}/{name}")
    }
}

/// One item delivered to a watcher.
#[derive(Debug, Clone)]
pub struct WatchItem {
    /// Event type as seen by this watcher's filter.
    pub ty: EventType,
    /// The object version.
    pub obj: Arc<Entry>,
}

#[derive(Debug, Clone)]
struct Event {
    ty: EventType,
    obj: Arc<Entry>,
    prev: Option<Arc<Entry>>,
}

/// What a watch or list selects.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Namespace, if namespaced request.
    pub namespace: Option<String>,
    /// Label selector.
    pub label: LabelSelector,
    /// Field selector.
    pub field: FieldSelector,
}

impl Filter {
    /// Whether the entry passes.
    pub fn matches(&self, e: &Entry) -> bool {
        if let Some(ns) = &self.namespace
            && e.namespace() != ns
        {
            return false;
        }
        self.label.matches(|k| e.label(k)) && self.field.matches(|k| e.field(k))
    }

    fn translate(&self, ev: &Event) -> Option<EventType> {
        let now = self.matches(&ev.obj);
        match ev.ty {
            EventType::Added => now.then_some(EventType::Added),
            EventType::Deleted => now.then_some(EventType::Deleted),
            EventType::Modified => {
                let before = ev.prev.as_ref().is_some_and(|p| self.matches(p));
                match (before, now) {
                    (true, true) => Some(EventType::Modified),
                    (false, true) => Some(EventType::Added),
                    (true, false) => Some(EventType::Deleted),
                    (false, false) => None,
                }
            }
        }
    }
}

struct Watcher {
    id: u64,
    filter: Filter,
    tx: mpsc::Sender<WatchItem>,
}

#[derive(Default)]
struct ResWatchers {
    general: Vec<Watcher>,
    by_node: HashMap<Box<str>, Vec<Watcher>>,
}

struct Ring {
    events: VecDeque<(u64, Event)>,
    start_rv: u64,
}

struct Inner {
    rv: u64,
    tables: Vec<BTreeMap<Box<str>, Arc<Entry>>>,
    rings: Vec<Ring>,
    watchers: Vec<ResWatchers>,
    owner_index: HashMap<Box<str>, HashSet<(u16, Box<str>)>>,
    uid_index: HashMap<Box<str>, (u16, Box<str>)>,
    next_watcher: u64,
}

/// Where a watch starts.
#[derive(Debug, Clone, Copy)]
pub enum WatchFrom {
    /// Only changes after now.
    Now,
    /// Every current object as ADDED first, then changes.
    Initial,
    /// Changes after this resourceVersion (410 if older than the window).
    Rv(u64),
}

/// A started watch.
pub struct WatchStart {
    /// Events to send first.
    pub initial: Vec<WatchItem>,
    /// Live events.
    pub rx: mpsc::Receiver<WatchItem>,
    /// resourceVersion at registration.
    pub rv: u64,
}

/// Result of a list.
pub struct ListResult {
    /// Matching entries in key order.
    pub items: Vec<Arc<Entry>>,
    /// List resourceVersion.
    pub rv: u64,
    /// Key to continue after, when truncated by limit.
    pub continue_after: Option<String>,
    /// Count of matching items after this page, when truncated.
    pub remaining: Option<usize>,
}

/// Propagation policy of a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    /// Delete the owner, then dependents asynchronously.
    Background,
    /// Delete dependents first, then the owner.
    Foreground,
    /// Leave dependents, removing their owner references.
    Orphan,
}

/// Options of a delete.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// gracePeriodSeconds.
    pub grace: Option<i64>,
    /// propagationPolicy (default Background).
    pub propagation: Option<Propagation>,
    /// preconditions.uid.
    pub uid: Option<String>,
    /// preconditions.resourceVersion.
    pub resource_version: Option<String>,
    /// dryRun=All.
    pub dry_run: bool,
}

/// What a delete did.
#[derive(Debug, Clone)]
pub enum DeleteOutcome {
    /// Removed from storage (entry is the final version).
    Removed(Arc<Entry>),
    /// Marked for deletion (finalizers, graceful pod deletion, foreground).
    Pending(Arc<Entry>),
}

/// How an update treats spec and status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateMode {
    /// Main resource: status changes are ignored for resources with a status subresource.
    Main,
    /// Status subresource: only status changes are kept.
    Status,
    /// Internal: everything kept.
    Raw,
}

enum GcMsg {
    OwnerGone(Box<str>),
    Foreground(Box<str>),
    FinishForeground(Box<str>),
    Namespace(String),
}

/// Store configuration.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Events retained per resource for watch resumption.
    pub event_window: usize,
    /// Capacity of each watcher's channel; a watcher that falls this far behind is dropped.
    pub watcher_buffer: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            event_window: 50_000,
            watcher_buffer: 100_000,
        }
    }
}

/// The in-memory store.
pub struct Store {
    inner: RwLock<Inner>,
    committed: AtomicU64,
    cfg: StoreConfig,
    gc_tx: mpsc::UnboundedSender<GcMsg>,
    gc_rx: parking_lot::Mutex<Option<mpsc::UnboundedReceiver<GcMsg>>>,
    next_ip: AtomicU64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("rv", &self.current_rv())
            .finish_non_exhaustive()
    }
}

/// `now` as RFC 3339 with seconds precision, as Kubernetes writes timestamps.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn qualified(def: &ResourceDef) -> String {
    if def.group.is_empty() {
        def.plural.to_string()
    } else {
        format!("{}.{}", def.plural, def.group)
    }
}

/// Qualified resource name for messages (`pods`, `deployments.apps`).
pub fn qualified_resource(res: usize) -> String {
    RESOURCES.get(res).map(qualified).unwrap_or_default()
}

fn get_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for p in path.split('.') {
        cur = cur.get(p)?;
    }
    Some(cur)
}

fn field_string(v: &Value, path: &str) -> Box<str> {
    match get_path(v, path) {
        Some(Value::String(s)) => s.as_str().into(),
        Some(Value::Bool(b)) => if *b { "true" } else { "false" }.into(),
        Some(Value::Number(n)) => n.to_string().into(),
        _ => {
            if path == "spec.unschedulable" || path == "spec.hostNetwork" {
                "false".into()
            } else {
                "".into()
            }
        }
    }
}

/// Drops empty metadata maps and lists, as the real server's JSON encoding (`omitempty`)
/// does.
fn normalize_meta(v: &mut Value) {
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in ["annotations", "labels", "finalizers", "ownerReferences"] {
            let empty = match m.get(k) {
                Some(Value::Object(o)) => o.is_empty(),
                Some(Value::Array(a)) => a.is_empty(),
                Some(Value::Null) => true,
                _ => false,
            };
            if empty {
                m.remove(k);
            }
        }
    }
}

fn build_entry(
    res: usize,
    key: &str,
    ns_len: usize,
    rv: u64,
    v: &Value,
) -> Result<Entry, StoreError> {
    build_entry_with(res, key, ns_len, rv, v, None)
}

/// A copy of an entry's index without its bytes (what watch filtering of the previous
/// version needs), so the event ring does not keep old object bodies alive.
fn stripped(e: &Entry) -> Entry {
    Entry {
        key: e.key.clone(),
        ns_len: e.ns_len,
        rv: e.rv,
        uid: e.uid.clone(),
        labels: e.labels.clone(),
        fields: e.fields.clone(),
        owners: Box::default(),
        deleting: e.deleting,
        foreground: e.foreground,
        bytes: Bytes::new(),
    }
}

fn build_entry_with(
    res: usize,
    key: &str,
    ns_len: usize,
    rv: u64,
    v: &Value,
    prev: Option<&Entry>,
) -> Result<Entry, StoreError> {
    let def = &RESOURCES[res];
    let meta = v.get("metadata");
    let labels: Arc<[(Box<str>, Box<str>)]> = meta
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.as_str().into(), v.as_str().unwrap_or("").into()))
                .collect()
        })
        .unwrap_or_default();
    let fields: Arc<[(&'static str, Box<str>)]> = def
        .fields
        .iter()
        .map(|f| {
            let val = if *f == "source" {
                field_string(v, "source.component")
            } else {
                field_string(v, f)
            };
            (*f, val)
        })
        .collect();
    let owners: Box<[Box<str>]> = meta
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|o| o.get("uid")?.as_str().map(Into::into))
                .collect()
        })
        .unwrap_or_default();
    let finalizers = meta
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array);
    let foreground =
        finalizers.is_some_and(|f| f.iter().any(|x| x.as_str() == Some("foregroundDeletion")));
    let deleting = meta
        .and_then(|m| m.get("deletionTimestamp"))
        .is_some_and(|d| !d.is_null());
    let uid = meta
        .and_then(|m| m.get("uid"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .into();
    let mut bytes = serde_json::to_vec(v).map_err(|e| StoreError::Internal(e.to_string()))?;
    bytes.shrink_to_fit();
    // Share unchanged index parts with the previous version.
    let (labels, fields) = match prev {
        Some(p) => (
            if p.labels == labels {
                p.labels.clone()
            } else {
                labels
            },
            if p.fields == fields {
                p.fields.clone()
            } else {
                fields
            },
        ),
        None => (labels, fields),
    };
    Ok(Entry {
        key: key.into(),
        ns_len: u16::try_from(ns_len)
            .map_err(|_| StoreError::Invalid("namespace too long".into()))?,
        rv,
        uid,
        labels,
        fields,
        owners,
        deleting,
        foreground,
        bytes: Bytes::from(bytes),
    })
}

fn set_meta(v: &mut Value, k: &str, val: Value) {
    if !v.get("metadata").is_some_and(Value::is_object)
        && let Some(o) = v.as_object_mut()
    {
        o.insert("metadata".into(), Value::Object(Map::new()));
    }
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        if val.is_null() {
            m.remove(k);
        } else {
            m.insert(k.to_string(), val);
        }
    }
}

fn meta_str<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get("metadata")?.get(k)?.as_str()
}

fn finalizers_empty(v: &Value) -> bool {
    v.get("metadata")
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .is_none_or(|a| a.is_empty())
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    use rand::Rng;
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

const NS_RES: &str = "namespaces";

impl Store {
    /// An empty store.
    pub fn new(cfg: StoreConfig) -> Arc<Self> {
        let n = RESOURCES.len();
        let (gc_tx, gc_rx) = mpsc::unbounded_channel();
        Arc::new(Self {
            inner: RwLock::new(Inner {
                rv: 1,
                tables: (0..n).map(|_| BTreeMap::new()).collect(),
                rings: (0..n)
                    .map(|_| Ring {
                        events: VecDeque::new(),
                        start_rv: 0,
                    })
                    .collect(),
                watchers: (0..n).map(|_| ResWatchers::default()).collect(),
                owner_index: HashMap::new(),
                uid_index: HashMap::new(),
                next_watcher: 0,
            }),
            committed: AtomicU64::new(1),
            cfg,
            gc_tx,
            gc_rx: parking_lot::Mutex::new(Some(gc_rx)),
            next_ip: AtomicU64::new(10),
        })
    }

    /// The latest committed resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.committed.load(Ordering::Acquire)
    }

    /// Allocates the next service cluster IP from 10.96.0.0/12.
    pub fn allocate_cluster_ip(&self) -> String {
        let n = self.next_ip.fetch_add(1, Ordering::Relaxed) % (1 << 20);
        let base: u32 = (10 << 24) | (96 << 16);
        let ip = base + n as u32;
        format!(
            "{}.{}.{}.{}",
            ip >> 24,
            (ip >> 16) & 255,
            (ip >> 8) & 255,
            ip & 255
        )
    }

    /// Number of objects per resource (for `apiserver_storage_objects`).
    pub fn counts(&self) -> Vec<(String, i64)> {
        let inner = self.inner.read();
        RESOURCES
            .iter()
            .zip(&inner.tables)
            .map(|(d, t)| (d.storage_name(), t.len() as i64))
            .collect()
    }

    /// Gets one object.
    pub fn get(&self, res: usize, namespace: &str, name: &str) -> Option<Arc<Entry>> {
        let key = make_key(namespace, name);
        self.inner
            .read()
            .tables
            .get(res)?
            .get(key.as_str())
            .cloned()
    }

    fn not_found(res: usize, name: &str) -> StoreError {
        StoreError::NotFound {
            resource: qualified_resource(res),
            name: name.to_string(),
        }
    }

    /// Lists objects in key order, after `continue_after`, at most `limit` (0 = all).
    pub fn list(
        &self,
        res: usize,
        filter: &Filter,
        limit: usize,
        continue_after: Option<&str>,
    ) -> ListResult {
        let inner = self.inner.read();
        let rv = inner.rv;
        let Some(table) = inner.tables.get(res) else {
            return ListResult {
                items: Vec::new(),
                rv,
                continue_after: None,
                remaining: None,
            };
        };
        let prefix = filter.namespace.as_deref().map(|ns| format!("{ns}/"));
        let mut items = Vec::new();
        let mut continue_key = None;
        let mut remaining = 0usize;
        let selective = !filter.label.is_empty() || !filter.field.is_empty();
        for (k, e) in scan(table, prefix.as_deref(), continue_after) {
            if !filter.matches(e) {
                continue;
            }
            if continue_key.is_some() {
                remaining += 1;
                if selective {
                    // Like the real server, remainingItemCount is only computed for
                    // unfiltered lists; one more match is enough to hand out a token.
                    break;
                }
                continue;
            }
            items.push(e.clone());
            if limit > 0 && items.len() == limit {
                continue_key = Some(k.to_string());
            }
        }
        if remaining == 0 {
            continue_key = None;
        }
        ListResult {
            items,
            rv,
            remaining: continue_key
                .as_ref()
                .filter(|_| !selective)
                .map(|_| remaining),
            continue_after: continue_key,
        }
    }

    /// Commits a new state (Some) or removal (None) of `key` under the write lock.
    fn commit(
        &self,
        inner: &mut Inner,
        res: usize,
        key: &str,
        ns_len: usize,
        mut v: Value,
        remove: bool,
    ) -> Result<Arc<Entry>, StoreError> {
        let rv = inner.rv + 1;
        set_meta(&mut v, "resourceVersion", Value::String(rv.to_string()));
        normalize_meta(&mut v);
        let old = inner.tables[res].get(key).cloned();
        let entry = Arc::new(build_entry_with(res, key, ns_len, rv, &v, old.as_deref())?);
        drop(old);
        inner.rv = rv;
        let prev = if remove {
            inner.tables[res].remove(key)
        } else {
            inner.tables[res].insert(key.into(), entry.clone())
        };
        // Owner and uid indexes.
        if let Some(p) = &prev {
            for o in p.owners.iter() {
                if let Some(set) = inner.owner_index.get_mut(o) {
                    set.remove(&(res as u16, Box::from(key)));
                    if set.is_empty() {
                        inner.owner_index.remove(o);
                    }
                }
            }
        }
        if remove {
            inner.uid_index.remove(&entry.uid);
            let _ = self.gc_tx.send(GcMsg::OwnerGone(entry.uid.clone()));
            for o in entry.owners.iter() {
                let finished = !inner.owner_index.contains_key(o);
                if finished
                    && let Some((ores, okey)) = inner.uid_index.get(o)
                    && inner.tables[*ores as usize]
                        .get(okey)
                        .is_some_and(|e| e.foreground)
                {
                    let _ = self.gc_tx.send(GcMsg::FinishForeground(o.clone()));
                }
            }
        } else {
            if prev.is_none() && !entry.uid.is_empty() {
                inner
                    .uid_index
                    .insert(entry.uid.clone(), (res as u16, key.into()));
            }
            for o in entry.owners.iter() {
                inner
                    .owner_index
                    .entry(o.clone())
                    .or_default()
                    .insert((res as u16, key.into()));
            }
            // A dependent whose owners are all gone (created after its owner was deleted) is
            // garbage, as the real garbage collector decides from its graph.
            if prev.is_none()
                && !entry.owners.is_empty()
                && entry
                    .owners
                    .iter()
                    .all(|o| !inner.uid_index.contains_key(o))
            {
                for o in entry.owners.iter() {
                    let _ = self.gc_tx.send(GcMsg::OwnerGone(o.clone()));
                }
            }
        }
        let ty = if remove {
            EventType::Deleted
        } else if prev.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        let ev = Event {
            ty,
            obj: entry.clone(),
            prev: if remove {
                None
            } else {
                prev.map(|p| Arc::new(stripped(&p)))
            },
        };
        // Broadcast.
        let node_field = RESOURCES[res].plural == "pods" && RESOURCES[res].group.is_empty();
        let watchers = &mut inner.watchers[res];
        let mut dead: Vec<u64> = Vec::new();
        let send = |w: &Watcher, dead: &mut Vec<u64>| {
            if let Some(t) = w.filter.translate(&ev)
                && w.tx
                    .try_send(WatchItem {
                        ty: t,
                        obj: ev.obj.clone(),
                    })
                    .is_err()
            {
                dead.push(w.id);
            }
        };
        for w in &watchers.general {
            send(w, &mut dead);
        }
        if node_field && !watchers.by_node.is_empty() {
            let new_node = ev.obj.field("spec.nodeName").unwrap_or("");
            let old_node = ev
                .prev
                .as_ref()
                .and_then(|p| p.field("spec.nodeName"))
                .unwrap_or("");
            if let Some(ws) = watchers.by_node.get(new_node) {
                for w in ws {
                    send(w, &mut dead);
                }
            }
            if old_node != new_node
                && let Some(ws) = watchers.by_node.get(old_node)
            {
                for w in ws {
                    send(w, &mut dead);
                }
            }
        }
        if !dead.is_empty() {
            watchers.general.retain(|w| !dead.contains(&w.id));
            for ws in watchers.by_node.values_mut() {
                ws.retain(|w| !dead.contains(&w.id));
            }
            watchers.by_node.retain(|_, ws| !ws.is_empty());
        }
        let ring = &mut inner.rings[res];
        ring.events.push_back((rv, ev));
        while ring.events.len() > self.cfg.event_window.max(1) {
            if let Some((old, _)) = ring.events.pop_front() {
                ring.start_rv = old;
            }
        }
        self.committed.store(rv, Ordering::Release);
        Ok(entry)
    }

    /// Creates an object (metadata.name or generateName required; namespace must exist).
    pub fn create(
        &self,
        res: usize,
        namespace: &str,
        mut v: Value,
        dry_run: bool,
    ) -> Result<Arc<Entry>, StoreError> {
        let def = RESOURCES
            .get(res)
            .ok_or_else(|| StoreError::Internal("resource".into()))?;
        let ns_res = idx("", NS_RES);
        let explicit = meta_str(&v, "name").unwrap_or("").to_string();
        let generate = meta_str(&v, "generateName").unwrap_or("").to_string();
        if explicit.is_empty() && generate.is_empty() {
            return Err(StoreError::Invalid(
                "name or generateName is required".into(),
            ));
        }
        if meta_str(&v, "uid").is_none_or(str::is_empty) {
            set_meta(
                &mut v,
                "uid",
                Value::String(uuid::Uuid::new_v4().to_string()),
            );
        }
        set_meta(&mut v, "creationTimestamp", Value::String(now_rfc3339()));
        set_meta(&mut v, "deletionTimestamp", Value::Null);
        set_meta(&mut v, "deletionGracePeriodSeconds", Value::Null);
        if def.generation {
            set_meta(&mut v, "generation", json!(1));
        } else {
            set_meta(&mut v, "generation", Value::Null);
        }
        if def.namespaced {
            set_meta(&mut v, "namespace", Value::String(namespace.to_string()));
        } else {
            set_meta(&mut v, "namespace", Value::Null);
        }
        let ns_len = if def.namespaced { namespace.len() } else { 0 };
        let mut inner = self.inner.write();
        if def.namespaced {
            match inner.tables[ns_res].get(namespace) {
                None => {
                    return Err(StoreError::NotFound {
                        resource: "namespaces".into(),
                        name: namespace.to_string(),
                    });
                }
                Some(ns) if ns.deleting => {
                    return Err(StoreError::NamespaceTerminating {
                        resource: qualified(def),
                        name: if explicit.is_empty() {
                            generate.clone()
                        } else {
                            explicit.clone()
                        },
                        namespace: namespace.to_string(),
                    });
                }
                _ => {}
            }
        }
        let mut name = explicit.clone();
        let mut attempts = 0;
        loop {
            if name.is_empty() {
                name = format!("{generate}{}", random_suffix());
            }
            let key = make_key(if def.namespaced { namespace } else { "" }, &name);
            if !inner.tables[res].contains_key(key.as_str()) {
                set_meta(&mut v, "name", Value::String(name.clone()));
                if dry_run {
                    set_meta(&mut v, "resourceVersion", Value::Null);
                    normalize_meta(&mut v);
                    return Ok(Arc::new(build_entry(res, &key, ns_len, 0, &v)?));
                }
                let e = self.commit(&mut inner, res, &key, ns_len, v, false)?;
                if res == ns_res {
                    drop(inner);
                    self.namespace_created(&name);
                }
                return Ok(e);
            }
            attempts += 1;
            if !explicit.is_empty() || attempts > 8 {
                return Err(StoreError::AlreadyExists {
                    resource: qualified(def),
                    name,
                });
            }
            name.clear();
        }
    }

    fn namespace_created(&self, ns: &str) {
        let sa = json!({"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"default"}});
        let _ = self.create(idx("", "serviceaccounts"), ns, sa, false);
        let cm = json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"kube-root-ca.crt",
            "annotations":{"kubernetes.io/description":"Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
            "data":{"ca.crt":"-----BEGIN CERTIFICATE-----\nMIIBsimulatedcl2\n-----END CERTIFICATE-----\n"}});
        let _ = self.create(idx("", "configmaps"), ns, cm, false);
    }

    /// Read-modify-write with optimistic retries: `f` gets the current object and returns the
    /// new one. Store invariants (immutable metadata, generation, status/spec separation,
    /// resourceVersion preconditions, finalization) are applied after `f`.
    pub fn update(
        &self,
        res: usize,
        namespace: &str,
        name: &str,
        mode: UpdateMode,
        dry_run: bool,
        mut f: impl FnMut(&Value) -> Result<Value, StoreError>,
    ) -> Result<Arc<Entry>, StoreError> {
        let def = RESOURCES
            .get(res)
            .ok_or_else(|| StoreError::Internal("resource".into()))?;
        let ns = if def.namespaced { namespace } else { "" };
        let key = make_key(ns, name);
        loop {
            let cur = self
                .get(res, ns, name)
                .ok_or_else(|| Self::not_found(res, name))?;
            let old = cur.value()?;
            let mut new = f(&old)?;
            if !new.is_object() {
                return Err(StoreError::Invalid("object must be a JSON object".into()));
            }
            if let Some(want) = meta_str(&new, "resourceVersion")
                && !want.is_empty()
                && want != cur.rv.to_string()
            {
                return Err(StoreError::Conflict {
                    resource: qualified(def),
                    name: name.to_string(),
                    reason: "the object has been modified; please apply your changes to the latest version and try again".into(),
                });
            }
            if let Some(n) = meta_str(&new, "name")
                && n != name
            {
                return Err(StoreError::Invalid(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
            // Immutable / server-managed metadata (deletion marks too, except on raw writes).
            let deletion: &[&str] = if mode == UpdateMode::Raw {
                &[]
            } else {
                &["deletionTimestamp", "deletionGracePeriodSeconds"]
            };
            for k in [
                "uid",
                "creationTimestamp",
                "namespace",
                "name",
                "generation",
            ]
            .iter()
            .chain(deletion)
            {
                set_meta(
                    &mut new,
                    k,
                    old.get("metadata")
                        .and_then(|m| m.get(*k))
                        .cloned()
                        .unwrap_or(Value::Null),
                );
            }
            if def.has(crate::resources::sub::STATUS) {
                match mode {
                    UpdateMode::Main => {
                        if let Some(o) = new.as_object_mut() {
                            match old.get("status") {
                                Some(s) => o.insert("status".into(), s.clone()),
                                None => o.remove("status"),
                            };
                        }
                    }
                    UpdateMode::Status => {
                        // `new` is replaced by `merged`, so its status can be moved out.
                        let status = new.get_mut("status").map(Value::take);
                        let mut merged = old.clone();
                        if let Some(o) = merged.as_object_mut() {
                            match status {
                                Some(s) => o.insert("status".into(), s),
                                None => o.remove("status"),
                            };
                        }
                        new = merged;
                    }
                    UpdateMode::Raw => {}
                }
            }
            if def.generation && old.get("spec") != new.get("spec") {
                let g = old
                    .get("metadata")
                    .and_then(|m| m.get("generation"))
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                set_meta(&mut new, "generation", json!(g + 1));
            }
            let deleting = new
                .get("metadata")
                .and_then(|m| m.get("deletionTimestamp"))
                .is_some_and(|d| !d.is_null());
            let grace_done = new
                .get("metadata")
                .and_then(|m| m.get("deletionGracePeriodSeconds"))
                .and_then(Value::as_i64)
                .is_none_or(|g| g == 0);
            let ns_fin_empty = def.plural != NS_RES
                || new
                    .get("spec")
                    .and_then(|s| s.get("finalizers"))
                    .and_then(Value::as_array)
                    .is_none_or(|a| a.is_empty());
            let remove = deleting && grace_done && finalizers_empty(&new) && ns_fin_empty;
            normalize_meta(&mut new);
            if dry_run {
                return Ok(Arc::new(build_entry(
                    res,
                    &key,
                    if def.namespaced { ns.len() } else { 0 },
                    cur.rv,
                    &new,
                )?));
            }
            if old == new {
                return Ok(cur);
            }
            let mut inner = self.inner.write();
            match inner.tables[res].get(key.as_str()) {
                Some(e) if e.rv == cur.rv => {}
                Some(_) => continue,
                None => return Err(Self::not_found(res, name)),
            }
            return self.commit(
                &mut inner,
                res,
                &key,
                if def.namespaced { ns.len() } else { 0 },
                new,
                remove,
            );
        }
    }

    /// Deletes an object with Kubernetes semantics (finalizers, graceful pod deletion,
    /// propagation policy, namespace lifecycle).
    pub fn delete(
        self: &Arc<Self>,
        res: usize,
        namespace: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<DeleteOutcome, StoreError> {
        let def = RESOURCES
            .get(res)
            .ok_or_else(|| StoreError::Internal("resource".into()))?;
        let ns = if def.namespaced { namespace } else { "" };
        let ns_len = ns.len();
        let key = make_key(ns, name);
        let cur = self
            .get(res, ns, name)
            .ok_or_else(|| Self::not_found(res, name))?;
        if let Some(uid) = &opts.uid
            && *uid != *cur.uid
        {
            return Err(StoreError::Conflict {
                resource: qualified(def),
                name: name.to_string(),
                reason: format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    cur.uid
                ),
            });
        }
        if let Some(rv) = &opts.resource_version
            && *rv != cur.rv.to_string()
        {
            return Err(StoreError::Conflict {
                resource: qualified(def),
                name: name.to_string(),
                reason: format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    cur.rv
                ),
            });
        }
        if opts.dry_run {
            return Ok(DeleteOutcome::Removed(cur));
        }
        let is_pod = def.plural == "pods" && def.group.is_empty();
        let is_ns = def.plural == NS_RES && def.group.is_empty();
        if is_ns {
            let e = self.update(res, "", name, UpdateMode::Raw, false, |old| {
                let mut v = old.clone();
                if meta_str(&v, "deletionTimestamp").is_none() {
                    set_meta(&mut v, "deletionTimestamp", Value::String(now_rfc3339()));
                }
                if let Some(o) = v.as_object_mut() {
                    let status = o.entry("status").or_insert_with(|| json!({}));
                    if let Some(s) = status.as_object_mut() {
                        s.insert("phase".into(), json!("Terminating"));
                    }
                }
                Ok(v)
            })?;
            let _ = self.gc_tx.send(GcMsg::Namespace(name.to_string()));
            return Ok(DeleteOutcome::Pending(e));
        }
        let propagation = opts.propagation.unwrap_or(Propagation::Background);
        if propagation == Propagation::Orphan {
            self.orphan_dependents(&cur.uid);
        }
        let mut v = cur.value()?;
        if propagation == Propagation::Foreground {
            let has_deps = self.inner.read().owner_index.contains_key(&cur.uid);
            if has_deps || !finalizers_empty(&v) {
                let e = self.update(res, ns, name, UpdateMode::Raw, false, |old| {
                    let mut v = old.clone();
                    if meta_str(&v, "deletionTimestamp").is_none() {
                        set_meta(&mut v, "deletionTimestamp", Value::String(now_rfc3339()));
                        set_meta(&mut v, "deletionGracePeriodSeconds", json!(0));
                    }
                    if has_deps {
                        let mut fins: Vec<Value> = v["metadata"]["finalizers"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default();
                        if !fins.iter().any(|f| f == "foregroundDeletion") {
                            fins.push(json!("foregroundDeletion"));
                        }
                        set_meta(&mut v, "finalizers", Value::Array(fins));
                    }
                    Ok(v)
                })?;
                if has_deps {
                    let _ = self.gc_tx.send(GcMsg::Foreground(cur.uid.clone()));
                }
                return Ok(DeleteOutcome::Pending(e));
            }
        }
        // Graceful pod deletion.
        let mut grace = 0i64;
        if is_pod {
            let bound = v
                .get("spec")
                .and_then(|s| s.get("nodeName"))
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty());
            let phase = v
                .get("status")
                .and_then(|s| s.get("phase"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let terminal = phase == "Succeeded" || phase == "Failed";
            let default = v
                .get("spec")
                .and_then(|s| s.get("terminationGracePeriodSeconds"))
                .and_then(Value::as_i64)
                .unwrap_or(30);
            grace = opts.grace.unwrap_or(default).max(0);
            if !bound || terminal {
                grace = 0;
            }
        }
        let has_fin = !finalizers_empty(&v);
        if has_fin || grace > 0 {
            let cur_grace = v["metadata"]["deletionGracePeriodSeconds"]
                .as_i64()
                .unwrap_or(0);
            if cur.deleting && grace >= cur_grace {
                return Ok(DeleteOutcome::Pending(cur));
            }
            let e = self.update(res, ns, name, UpdateMode::Raw, false, |old| {
                let mut v = old.clone();
                let ts = chrono::Utc::now() + chrono::Duration::seconds(grace);
                let ts = ts.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                set_meta(&mut v, "deletionTimestamp", Value::String(ts));
                set_meta(&mut v, "deletionGracePeriodSeconds", json!(grace));
                Ok(v)
            })?;
            return Ok(DeleteOutcome::Pending(e));
        }
        let mut inner = self.inner.write();
        let Some(latest) = inner.tables[res].get(key.as_str()).cloned() else {
            return Err(Self::not_found(res, name));
        };
        if latest.rv != cur.rv {
            v = latest.value()?;
        }
        let e = self.commit(&mut inner, res, &key, ns_len, v, true)?;
        Ok(DeleteOutcome::Removed(e))
    }

    fn orphan_dependents(&self, uid: &str) {
        let deps: Vec<(u16, Box<str>)> = self
            .inner
            .read()
            .owner_index
            .get(uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        for (r, k) in deps {
            let (ns, name) = split_key(&k, RESOURCES[r as usize].namespaced);
            let _ = self.update(r as usize, ns, name, UpdateMode::Raw, false, |old| {
                let mut v = old.clone();
                strip_owner(&mut v, uid);
                Ok(v)
            });
        }
    }

    /// Starts a watch.
    pub fn watch(
        &self,
        res: usize,
        filter: Filter,
        from: WatchFrom,
    ) -> Result<WatchStart, StoreError> {
        let (tx, rx) = mpsc::channel(self.cfg.watcher_buffer.max(16));
        let mut inner = self.inner.write();
        let rv = inner.rv;
        let mut initial = Vec::new();
        match from {
            WatchFrom::Now => {}
            WatchFrom::Initial => {
                let table = &inner.tables[res];
                let prefix = filter.namespace.as_deref().map(|ns| format!("{ns}/"));
                for (_, e) in scan(table, prefix.as_deref(), None) {
                    if filter.matches(e) {
                        initial.push(WatchItem {
                            ty: EventType::Added,
                            obj: e.clone(),
                        });
                    }
                }
            }
            WatchFrom::Rv(x) => {
                let ring = &inner.rings[res];
                if x < ring.start_rv {
                    return Err(StoreError::Gone {
                        requested: x,
                        oldest: ring.start_rv,
                    });
                }
                let pos = ring.events.partition_point(|(r, _)| *r <= x);
                for (_, ev) in ring.events.iter().skip(pos) {
                    if let Some(t) = filter.translate(ev) {
                        initial.push(WatchItem {
                            ty: t,
                            obj: ev.obj.clone(),
                        });
                    }
                }
            }
        }
        let id = inner.next_watcher;
        inner.next_watcher += 1;
        let node = if RESOURCES[res].plural == "pods" && RESOURCES[res].group.is_empty() {
            filter
                .field
                .equality_on("spec.nodeName")
                .map(Box::<str>::from)
        } else {
            None
        };
        let w = Watcher { id, filter, tx };
        match node {
            Some(n) => inner.watchers[res].by_node.entry(n).or_default().push(w),
            None => inner.watchers[res].general.push(w),
        }
        Ok(WatchStart { initial, rx, rv })
    }

    /// Removes closed watchers (called periodically).
    pub fn prune_watchers(&self) {
        let mut inner = self.inner.write();
        for w in inner.watchers.iter_mut() {
            w.general.retain(|x| !x.tx.is_closed());
            for ws in w.by_node.values_mut() {
                ws.retain(|x| !x.tx.is_closed());
            }
            w.by_node.retain(|_, ws| !ws.is_empty());
        }
    }

    /// Number of live watchers.
    pub fn watcher_count(&self) -> usize {
        let inner = self.inner.read();
        inner
            .watchers
            .iter()
            .map(|w| w.general.len() + w.by_node.values().map(Vec::len).sum::<usize>())
            .sum()
    }

    /// Spawns the garbage-collector / namespace-lifecycle worker and watcher pruning.
    pub fn spawn_workers(
        self: &Arc<Self>,
        shutdown: CancellationToken,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let mut handles = Vec::new();
        if let Some(mut rx) = self.gc_rx.lock().take() {
            let store = self.clone();
            let sd = shutdown.clone();
            handles.push(tokio::spawn(async move {
                loop {
                    let msg = tokio::select! {
                        _ = sd.cancelled() => break,
                        m = rx.recv() => match m { Some(m) => m, None => break },
                    };
                    match msg {
                        GcMsg::OwnerGone(uid) | GcMsg::Foreground(uid) => {
                            store.delete_dependents(&uid)
                        }
                        GcMsg::FinishForeground(uid) => store.finish_foreground(&uid),
                        GcMsg::Namespace(ns) => {
                            let s = store.clone();
                            let sd2 = sd.clone();
                            tokio::spawn(async move { s.namespace_cleanup(&ns, sd2).await });
                        }
                    }
                }
            }));
        }
        let store = self.clone();
        handles.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_secs(5)) => store.prune_watchers(),
                }
            }
        }));
        handles
    }

    fn delete_dependents(self: &Arc<Self>, uid: &str) {
        let deps: Vec<(u16, Box<str>)> = {
            let inner = self.inner.read();
            inner
                .owner_index
                .get(uid)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default()
        };
        let owner_alive = self.inner.read().uid_index.contains_key(uid);
        for (r, k) in deps {
            let r = r as usize;
            let (ns, name) = split_key(&k, RESOURCES[r].namespaced);
            let Some(e) = self.get(r, ns, name) else {
                continue;
            };
            let other_alive = {
                let inner = self.inner.read();
                e.owners
                    .iter()
                    .any(|o| &**o != uid && inner.uid_index.contains_key(o))
            };
            if other_alive && !owner_alive {
                let _ = self.update(r, ns, name, UpdateMode::Raw, false, |old| {
                    let mut v = old.clone();
                    strip_owner(&mut v, uid);
                    Ok(v)
                });
            } else if !e.deleting || !other_alive {
                let _ = self.delete(r, ns, name, &DeleteOptions::default());
            }
        }
        if owner_alive && !self.inner.read().owner_index.contains_key(uid) {
            self.finish_foreground(uid);
        }
    }

    fn finish_foreground(&self, uid: &str) {
        let loc = self.inner.read().uid_index.get(uid).cloned();
        let Some((r, k)) = loc else { return };
        if self.inner.read().owner_index.contains_key(uid) {
            return;
        }
        let r = r as usize;
        let (ns, name) = split_key(&k, RESOURCES[r].namespaced);
        let _ = self.update(r, ns, name, UpdateMode::Raw, false, |old| {
            let mut v = old.clone();
            if let Some(f) = v
                .get_mut("metadata")
                .and_then(|m| m.get_mut("finalizers"))
                .and_then(Value::as_array_mut)
            {
                f.retain(|x| x != "foregroundDeletion");
            }
            Ok(v)
        });
    }

    async fn namespace_cleanup(self: Arc<Self>, ns: &str, shutdown: CancellationToken) {
        let ns_res = idx("", NS_RES);
        loop {
            let mut remaining = 0usize;
            for (r, def) in RESOURCES.iter().enumerate() {
                if !def.namespaced {
                    continue;
                }
                let filter = Filter {
                    namespace: Some(ns.to_string()),
                    ..Default::default()
                };
                let items = self.list(r, &filter, 0, None).items;
                for e in items {
                    remaining += 1;
                    let mut opts = DeleteOptions::default();
                    if e.deleting && def.plural == "pods" {
                        // Force-remove pods whose grace period has run out.
                        let expired = e
                            .value()
                            .ok()
                            .and_then(|v| {
                                v["metadata"]["deletionTimestamp"]
                                    .as_str()
                                    .map(str::to_string)
                            })
                            .and_then(|ts| chrono::DateTime::parse_from_rfc3339(&ts).ok())
                            .is_some_and(|ts| ts < chrono::Utc::now());
                        if !expired {
                            continue;
                        }
                        opts.grace = Some(0);
                    } else if e.deleting {
                        continue;
                    }
                    let _ = self.delete(r, ns, e.name(), &opts);
                }
            }
            if remaining == 0 {
                let _ = self.update(ns_res, "", ns, UpdateMode::Raw, false, |old| {
                    let mut v = old.clone();
                    if let Some(s) = v.get_mut("spec").and_then(Value::as_object_mut) {
                        s.insert("finalizers".into(), json!([]));
                    }
                    Ok(v)
                });
                return;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    }
}

/// Splits a store key into (namespace, name).
pub fn split_key(key: &str, namespaced: bool) -> (&str, &str) {
    if namespaced {
        key.split_once('/').unwrap_or(("", key))
    } else {
        ("", key)
    }
}

fn strip_owner(v: &mut Value, uid: &str) {
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        let empty = if let Some(refs) = m.get_mut("ownerReferences").and_then(Value::as_array_mut) {
            refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid));
            refs.is_empty()
        } else {
            false
        };
        if empty {
            m.remove("ownerReferences");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cm(name: &str) -> Value {
        json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":name,"labels":{"a":"b"}},"data":{"k":"v"}})
    }

    fn store_with_ns() -> Arc<Store> {
        let s = Store::new(StoreConfig {
            event_window: 5,
            watcher_buffer: 100,
        });
        s.create(
            idx("", "namespaces"),
            "",
            json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"t"}}),
            false,
        )
        .unwrap();
        s
    }

    #[test]
    fn create_get_list_and_conflict() {
        let s = store_with_ns();
        let r = idx("", "configmaps");
        let e = s.create(r, "t", cm("x"), false).unwrap();
        assert_eq!(e.name(), "x");
        assert_eq!(e.namespace(), "t");
        assert!(matches!(
            s.create(r, "t", cm("x"), false),
            Err(StoreError::AlreadyExists { .. })
        ));
        assert!(matches!(
            s.create(r, "missing", cm("x"), false),
            Err(StoreError::NotFound { .. })
        ));
        let l = s.list(
            r,
            &Filter {
                namespace: Some("t".into()),
                ..Default::default()
            },
            1,
            None,
        );
        assert_eq!(l.items.len(), 1);
        assert!(l.continue_after.is_some());
        let stale = e.rv.to_string();
        s.update(r, "t", "x", UpdateMode::Main, false, |old| {
            let mut v = old.clone();
            v["data"]["k"] = json!("w");
            Ok(v)
        })
        .unwrap();
        let err = s
            .update(r, "t", "x", UpdateMode::Main, false, |old| {
                let mut v = old.clone();
                v["metadata"]["resourceVersion"] = json!(stale);
                Ok(v)
            })
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }));
    }

    #[test]
    fn watch_window_expires() {
        let s = store_with_ns();
        let r = idx("", "configmaps");
        let first = s.current_rv();
        for i in 0..10 {
            s.create(r, "t", cm(&format!("c{i}")), false).unwrap();
        }
        assert!(matches!(
            s.watch(r, Filter::default(), WatchFrom::Rv(first)),
            Err(StoreError::Gone { .. })
        ));
        let w = s
            .watch(r, Filter::default(), WatchFrom::Rv(s.current_rv() - 2))
            .unwrap();
        assert_eq!(w.initial.len(), 2);
    }

    #[test]
    fn finalizers_hold_deletion() {
        let s = store_with_ns();
        let r = idx("", "configmaps");
        let mut v = cm("f");
        v["metadata"]["finalizers"] = json!(["x/y"]);
        s.create(r, "t", v, false).unwrap();
        let out = s.delete(r, "t", "f", &DeleteOptions::default()).unwrap();
        assert!(matches!(out, DeleteOutcome::Pending(ref e) if e.deleting));
        s.update(r, "t", "f", UpdateMode::Main, false, |old| {
            let mut v = old.clone();
            v["metadata"]["finalizers"] = json!([]);
            Ok(v)
        })
        .unwrap();
        assert!(s.get(r, "t", "f").is_none());
    }

    #[test]
    fn slow_watcher_is_dropped_without_blocking_writers() {
        let s = Store::new(StoreConfig {
            event_window: 100,
            watcher_buffer: 16,
        });
        s.create(
            idx("", "namespaces"),
            "",
            json!({"metadata":{"name":"t"}}),
            false,
        )
        .unwrap();
        let r = idx("", "configmaps");
        let w = s.watch(r, Filter::default(), WatchFrom::Now).unwrap();
        for i in 0..100 {
            s.create(r, "t", cm(&format!("c{i}")), false).unwrap();
        }
        assert_eq!(s.watcher_count(), 0, "the full watcher was dropped");
        let mut rx = w.rx;
        let mut n = 0;
        while rx.try_recv().is_ok() {
            n += 1;
        }
        assert_eq!(
            n, 16,
            "it got what fit in its buffer, then its stream ended"
        );
    }

    #[test]
    fn per_node_pod_watch_sees_bind_as_added() {
        let s = store_with_ns();
        let r = idx("", "pods");
        let field = FieldSelector::parse("spec.nodeName=n1", &["spec.nodeName"]).unwrap();
        let mut w = s
            .watch(
                r,
                Filter {
                    field,
                    ..Filter::default()
                },
                WatchFrom::Now,
            )
            .unwrap();
        let pod = |name: &str| json!({"metadata":{"name":name},"spec":{"containers":[{"name":"c","image":"i"}]}});
        s.create(r, "t", pod("a"), false).unwrap();
        s.create(r, "t", pod("b"), false).unwrap();
        for (name, node) in [("a", "n1"), ("b", "n2")] {
            s.update(r, "t", name, UpdateMode::Raw, false, |old| {
                let mut v = old.clone();
                v["spec"]["nodeName"] = json!(node);
                Ok(v)
            })
            .unwrap();
        }
        let item = w.rx.try_recv().unwrap();
        assert_eq!((item.ty, item.obj.name()), (EventType::Added, "a"));
        assert!(
            w.rx.try_recv().is_err(),
            "pods of other nodes are filtered out"
        );
    }
}
