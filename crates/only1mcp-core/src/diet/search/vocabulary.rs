//! The fixed English vocabulary of the search: the stopwords dropped from
//! every text, and the concept groups ([`CONCEPTS`]) that expand a query
//! word with its synonyms.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use super::stem;

/// English function words, separated by whitespace.
const STOPWORDS: &str = "\
     about above across after again against along already also am an and any anymore \
     anything are aren around as at be because been before being but by can cannot could \
     couldn did didn do does doesn doing don down each either else etc ever for from further \
     had hadn has hasn have haven having he her here hers him his how if in into is isn it \
     its itself just let ll may me might mine more most much must my myself never no nor not \
     nothing of off on once only onto or other our ours out over please re same shall she \
     should shouldn so some something still such than that the their theirs them then there \
     these they this those through to too toward towards under up upon us ve very via want \
     was wasn we were weren what when where whether which while who whom whose why will with \
     within won would wouldn yet you your yours yourself";

/// Whether `word` (lowercase, unstemmed) is in [`STOPWORDS`].
pub(super) fn is_stopword(word: &str) -> bool {
    static SET: LazyLock<HashSet<&str>> = LazyLock::new(|| STOPWORDS.split_whitespace().collect());
    SET.contains(word)
}

/// Concept groups of common tool vocabulary, one group per string: everyday
/// words next to the words tools use for the same thing. A query word
/// expands to every other word of every group it is in (after stemming).
/// Keep it generic: a group belongs here if it would help any catalog of
/// that kind of tools, whatever the queries.
pub(super) const CONCEPTS: &[&str] = &[
    // Actions.
    "create make new generate initialize init mkdir",
    "show get read view display print see open inspect load retrieve dump",
    "write save store put persist record overwrite",
    "edit modify change update alter replace patch rewrite",
    "delete remove erase destroy drop rm purge forget discard",
    "find search lookup locate look query seek grep",
    "list enumerate ls browse",
    "move rename mv relocate",
    "copy duplicate cp clone",
    "convert conversion translate transform",
    "run execute start launch trigger invoke",
    "toggle enable disable turn activate deactivate switch",
    "echo repeat parrot mirror",
    "compress compression zip gzip gz archive shrink pack tar",
    "research investigate investigation study analyze analysis",
    "sum add plus total addition calculate compute arithmetic",
    "undo reset revert unstage rollback restore",
    // Files.
    "file document doc",
    "directory dir folder subdirectory subfolder mkdir ls",
    "path filepath filename",
    "size space bytes big large disk storage",
    "small tiny little mini",
    "tree hierarchy recursive structure nested layout",
    "info information metadata details stat stats properties attributes",
    "permission access allowed allow permitted accessible rights",
    "text string content contents plain",
    "line row",
    "head first top beginning",
    "tail last end bottom",
    "multiple several many both together batch bulk",
    "entire whole complete full everything every all",
    "media image audio video",
    "image picture photo img png jpg jpeg gif svg webp logo icon",
    "audio sound music recording mp3 wav ogg flac",
    "video movie mp4 mov webm",
    "binary blob base64",
    // The web.
    "web url uri page website site internet http fetch download online html webpage",
    "link reference ref pointer point",
    // Time.
    "time clock hour minute timestamp date morning afternoon evening night",
    "timezone zone tz utc gmt",
    "date day today yesterday tomorrow week month year calendar january february march \
     april june july august september october november december",
    "current now currently present moment latest today",
    // Version control.
    "commit history log revision",
    "revision commit sha hash changeset",
    "diff changes difference differ compare delta",
    "stage staging index add",
    "status state clean dirty untracked uncommitted pending",
    "repository repo codebase",
    "branch fork",
    "switch checkout",
    // Knowledge and memory.
    "memory remember recall memorize know knowledge graph",
    "entity node person people thing object item someone anyone everyone somebody anybody \
     everybody",
    "relation relationship connection link connect associate edge",
    "observation fact note remark",
    // Programs and messages.
    "environment env variable var",
    "config configuration setting settings preference option",
    "message msg notice",
    "notification notify alert subscribe subscription subscriber watch",
    "annotation annotate label hint tag",
    "log logging logger",
    "error fail failure exception",
    "number numeric integer digit count amount quantity",
    "simulate simulated fake mock dummy pretend demo sample example",
    "deep depth thorough comprehensive",
    "long slow lengthy duration progress",
    "llm model completion sampling",
];

/// Stem → the stems it expands to.
static SYNONYMS: LazyLock<HashMap<String, Vec<String>>> = LazyLock::new(|| {
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    for group in CONCEPTS {
        let stems: Vec<String> = group.split_whitespace().map(stem).collect();
        for word in &stems {
            let entry = map.entry(word.clone()).or_default();
            for other in &stems {
                if other != word && !entry.contains(other) {
                    entry.push(other.clone());
                }
            }
        }
    }
    map
});

/// The stems a query stem expands to (see [`CONCEPTS`]); empty if none.
pub(super) fn synonyms(stem: &str) -> &'static [String] {
    SYNONYMS.get(stem).map_or(&[], Vec::as_slice)
}
