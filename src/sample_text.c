/* sample_text.c — generated memories (see sample_text.h): topic vocabularies, sentence
 * templates and the seeded choices that put them together. */
#include "sample_text.h"
#include "sample_rng.h"

#include <stdlib.h>
#include <string.h>

#define NOUNS 14
#define VERBS 8

typedef struct {
    const char *name;
    const char *nouns[NOUNS]; /* most frequent first */
    const char *verbs[VERBS]; /* base form: "to VERB the NOUN" */
} topic;

static const topic topics[] = {
    {"postgres",
     {"connection pool", "replica", "vacuum schedule", "index", "query plan", "autovacuum", "WAL archive", "failover",
      "schema migration", "slow query log", "extension", "nightly backup", "partition", "statistics target"},
     {"tune", "restart", "reindex", "analyze", "upgrade", "monitor", "migrate", "backfill"}},
    {"kubernetes",
     {"ingress", "pod", "node pool", "helm chart", "namespace", "deployment", "secret", "service mesh", "autoscaler",
      "liveness probe", "config map", "cluster", "sidecar", "persistent volume"},
     {"deploy", "scale", "drain", "patch", "redeploy", "label", "restart", "upgrade"}},
    {"frontend",
     {"build", "bundle", "component", "style sheet", "dark mode", "design token", "signup form", "router",
      "test suite", "browser cache", "font", "icon set", "landing page", "button"},
     {"refactor", "ship", "review", "lint", "split", "cache", "test", "redesign"}},
    {"billing",
     {"invoice", "subscription", "refund", "payment provider", "tax rate", "credit note", "pricing page", "trial",
      "receipt", "ledger", "currency", "discount code", "dunning email", "annual plan"},
     {"issue", "refund", "charge", "reconcile", "cancel", "renew", "audit", "export"}},
    {"travel",
     {"flight", "hotel", "train ticket", "passport", "visa", "itinerary", "layover", "rental car", "luggage",
      "boarding pass", "window seat", "airport lounge", "travel insurance", "day trip"},
     {"book", "cancel", "confirm", "pack", "upgrade", "rebook", "check", "renew"}},
    {"cooking",
     {"sourdough starter", "oven", "recipe", "spice rack", "cast iron pan", "chicken stock", "marinade", "pizza dough",
      "pressure cooker", "chef knife", "bread", "curry", "salad", "freezer"},
     {"bake", "season", "simmer", "prep", "freeze", "sharpen", "marinate", "roast"}},
    {"fitness",
     {"running plan", "squat", "heart rate", "rest day", "protein", "stretching", "gym", "marathon", "road bike",
      "interval session", "running shoes", "knee", "pull-up", "swim"},
     {"train", "stretch", "rest", "track", "increase", "lift", "jog", "recover"}},
    {"music",
     {"guitar", "playlist", "piano", "chord", "metronome", "setlist", "amplifier", "vinyl", "headphones", "concert",
      "lesson", "scale", "drum kit", "record player"},
     {"practise", "tune", "record", "rehearse", "play", "mix", "transcribe", "buy"}},
    {"finance",
     {"budget", "savings account", "index fund", "tax return", "mortgage", "pension", "expense report",
      "credit card", "emergency fund", "receipt folder", "dividend", "bank transfer", "insurance", "spreadsheet"},
     {"save", "invest", "pay", "file", "transfer", "review", "claim", "rebalance"}},
    {"security",
     {"password manager", "SSH key", "certificate", "firewall rule", "two-factor login", "audit log",
      "vulnerability scan", "access token", "recovery key", "phishing test", "VPN", "secret store", "incident report",
      "laptop"},
     {"rotate", "revoke", "patch", "encrypt", "audit", "renew", "scan", "lock"}},
    {"networking",
     {"router", "DNS record", "load balancer", "subnet", "latency", "packet loss", "switch", "wifi", "proxy",
      "TLS handshake", "bandwidth", "cable", "VLAN", "port forward"},
     {"configure", "reboot", "trace", "route", "measure", "replace", "expose", "block"}},
    {"python",
     {"virtualenv", "dependency", "type hint", "test fixture", "package", "notebook", "linter", "event loop",
      "dataclass", "requirements file", "logging setup", "profiler", "wheel", "script"},
     {"pin", "refactor", "profile", "install", "vendor", "annotate", "debug", "package"}},
    {"rust",
     {"borrow checker", "crate", "lifetime", "trait", "cargo workspace", "async runtime", "macro", "clippy warning",
      "feature flag", "unsafe block", "build cache", "enum", "iterator", "benchmark"},
     {"compile", "refactor", "benchmark", "publish", "clone", "box", "bump", "audit"}},
    {"hiring",
     {"candidate", "interview loop", "job post", "offer letter", "reference check", "take-home task", "recruiter",
      "onboarding plan", "salary band", "panel", "screening call", "hiring manager", "start date", "contract"},
     {"interview", "schedule", "reject", "hire", "onboard", "sign", "review", "post"}},
    {"support",
     {"ticket", "customer", "escalation", "refund request", "help article", "chat queue", "response time",
      "bug report", "feature request", "status page", "canned reply", "satisfaction survey", "account", "outage"},
     {"answer", "escalate", "close", "tag", "merge", "reply", "triage", "reopen"}},
    {"marketing",
     {"newsletter", "campaign", "landing page", "blog post", "conversion rate", "ad budget", "social post",
      "webinar", "press release", "mailing list", "brand guide", "launch", "keyword list", "analytics"},
     {"publish", "launch", "measure", "draft", "schedule", "target", "promote", "test"}},
    {"legal",
     {"contract", "privacy policy", "trademark", "processing agreement", "terms of service", "license",
      "invoice dispute", "NDA", "compliance review", "retention policy", "lawyer", "signature", "clause", "deadline"},
     {"sign", "review", "renew", "file", "redline", "archive", "negotiate", "register"}},
    {"gardening",
     {"tomato bed", "compost", "raised bed", "seed tray", "greenhouse", "hedge", "lawn", "watering can", "soil",
      "rose bush", "slug trap", "herb garden", "fruit tree", "mulch"},
     {"water", "prune", "plant", "harvest", "sow", "weed", "repot", "feed"}},
    {"photography",
     {"camera", "lens", "tripod", "raw file", "photo library", "memory card", "flash", "print", "portrait",
      "exposure", "editing preset", "backup drive", "polariser", "album"},
     {"shoot", "edit", "print", "export", "calibrate", "clean", "sort", "frame"}},
    {"reading",
     {"book club", "novel", "library card", "reading list", "e-reader", "chapter", "audiobook", "bookmark", "essay",
      "author", "poetry", "shelf", "magazine", "review"},
     {"read", "finish", "borrow", "return", "recommend", "lend", "annotate", "reread"}},
    {"health",
     {"doctor", "prescription", "dentist", "blood test", "allergy", "vaccination", "sleep", "vitamin", "physio",
      "back pain", "appointment", "pharmacy", "eye test", "headache"},
     {"book", "refill", "take", "rest", "cancel", "track", "mention", "avoid"}},
    {"family",
     {"birthday", "school run", "grandparents", "holiday plan", "piano lesson", "parent evening", "babysitter",
      "family dinner", "present", "anniversary", "homework", "summer camp", "photo album", "dog"},
     {"plan", "call", "visit", "collect", "wrap", "celebrate", "remind", "invite"}},
    {"home",
     {"boiler", "roof", "kitchen tap", "washing machine", "smoke alarm", "electric bill", "heating", "window",
      "garage door", "paint", "plumber", "fuse box", "dishwasher", "thermostat"},
     {"fix", "replace", "service", "clean", "paint", "check", "install", "repair"}},
    {"cars",
     {"tyre pressure", "oil change", "brake pads", "battery", "service", "insurance renewal", "parking permit",
      "charging cable", "windscreen", "inspection", "fuel card", "dashboard light", "roof rack", "spare key"},
     {"charge", "replace", "book", "check", "wash", "renew", "park", "inflate"}},
    {"ml",
     {"training run", "dataset", "embedding model", "learning rate", "evaluation set", "checkpoint", "GPU",
      "tokenizer", "fine-tune job", "feature store", "baseline", "loss curve", "inference server", "label set"},
     {"train", "evaluate", "tune", "retrain", "label", "deploy", "quantize", "compare"}},
    {"observability",
     {"dashboard", "alert", "trace", "log pipeline", "metric", "on-call rota", "error budget", "pager",
      "latency graph", "retention", "exporter", "runbook", "incident", "SLO"},
     {"silence", "graph", "page", "trace", "tune", "sample", "escalate", "review"}},
    {"ci",
     {"pipeline", "runner", "build cache", "flaky test", "release branch", "artifact", "merge queue", "lint step",
      "nightly build", "test matrix", "container image", "deploy job", "code review", "coverage report"},
     {"rerun", "cache", "split", "pin", "bisect", "merge", "release", "skip"}},
    {"mobile",
     {"app store", "push notification", "crash report", "release build", "beta tester", "offline mode", "app icon",
      "deep link", "screen size", "battery drain", "permissions dialog", "in-app purchase", "tablet layout",
      "review prompt"},
     {"submit", "ship", "test", "fix", "localise", "profile", "sign", "throttle"}},
    {"design",
     {"wireframe", "mockup", "colour palette", "typography", "user flow", "prototype", "design review", "icon",
      "grid", "accessibility audit", "style guide", "illustration", "usability test", "logo"},
     {"sketch", "iterate", "present", "simplify", "align", "test", "export", "polish"}},
    {"data",
     {"warehouse", "ETL job", "dbt model", "dashboard", "CSV export", "data contract", "schema", "backfill",
      "query", "weekly report", "event stream", "partition", "metric definition", "sample"},
     {"load", "backfill", "validate", "export", "dedupe", "join", "aggregate", "archive"}},
};
#define NTOPICS ((int) (sizeof topics / sizeof *topics))

static const char *const adjectives[] = {"slow",   "fast",    "new",      "old",        "cheap",
                                         "pricey", "noisy",   "quiet",    "stable",     "unreliable",
                                         "large",  "small",   "busy",     "fragile",    "simple",
                                         "messy",  "reliable", "outdated", "heavy",     "light"};
static const char *const people[] = {"Alice", "Bruno", "Chen",  "Dana",  "Elif", "Farid", "Grace", "Hiro",
                                     "Ines",  "Jonas", "Kemal", "Lena",  "Mateo", "Nadia", "Omar", "Priya",
                                     "Quinn", "Rosa",  "Sven",  "Tariq", "Uma",  "Viktor", "Wen",  "Yara"};
static const char *const days[] = {"Monday",  "Tuesday", "Wednesday", "Thursday", "Friday",
                                   "Saturday", "Sunday", "March 3",   "May 12",   "June 28",
                                   "September 9", "November 21"};

/* {N} a noun of the topic, {M} another one, {V} a verb, {W} another verb, {A} an adjective,
 * {P} a person, {D} a day, {K} a number from 2 to 60. */
typedef struct {
    const char *type;
    const char *text;
} template;

static const template templates[] = {
    {"preference", "prefers the {A} {N} over the {M}."},
    {"preference", "likes to {V} the {N} first and leave the {M} for later."},
    {"preference", "does not want the {M} near the {N} any more."},
    {"preference", "would rather {V} the {N} by hand than trust the {M}."},
    {"preference", "asked to always {V} the {N} on {D}."},
    {"decision", "decided to {V} the {N} before {D}; {P} agreed."},
    {"decision", "agreed with {P} to keep the {N} and drop the {M}."},
    {"decision", "chose the {A} {N} for now, to be reviewed in {K} weeks."},
    {"decision", "from now on we {V} the {N} every {K} days."},
    {"event", "on {D}, {P} reported that the {N} failed after the {M} change."},
    {"event", "{P} brought up the {N} during the call on {D}."},
    {"event", "the {N} took {K} minutes on {D}, far longer than usual."},
    {"event", "met {P} on {D} to talk about the {N} and the {M}."},
    {"procedure", "to {V} the {N}, check the {M} first, then {W} it."},
    {"procedure", "steps for the {N}: {V} the {M}, wait {K} minutes, then look at the {N} again."},
    {"procedure", "when the {N} seems {A}, {V} the {M} before anything else."},
    {"fact", "the {N} depends on the {M}."},
    {"fact", "{P} looks after the {N}; ask before touching the {M}."},
    {"fact", "the {N} and the {M} are kept together, {K} of each."},
    {"fact", "the {A} {N} lasts about {K} days."},
    {"concept", "the {N} works much like the {M}, only {A}."},
    {"concept", "think of the {N} as the {A} part of the {M}."},
};
#define NTEMPLATES ((int) (sizeof templates / sizeof *templates))

/* The stream of memory `index` (apart from any stream pgmemctl-sample uses). */
#define STREAM_BASE UINT64_C(0x6d656d6f72790000)

int sample_text_topics(void) { return NTOPICS; }

const char *sample_text_topic(int i) { return i >= 0 && i < NTOPICS ? topics[i].name : NULL; }

/* A rank in [0, n) with weight 100000 / (rank + offset): integers only. */
static int zipf(sample_rng *r, int n, int offset)
{
    uint64_t total = 0;
    for (int k = 0; k < n; k++)
        total += 100000u / (unsigned) (k + offset);
    uint64_t x = sample_rng_below(r, total);
    for (int k = 0; k < n; k++) {
        uint64_t w = 100000u / (unsigned) (k + offset);
        if (x < w)
            return k;
        x -= w;
    }
    return n - 1;
}

static int uniform(sample_rng *r, int n) { return (int) sample_rng_below(r, (uint64_t) n); }

/* A second pick from [0, n) that differs from `not` (n >= 2). */
static int other(sample_rng *r, int n, int not, bool skewed)
{
    int k = skewed ? zipf(r, n - 1, 2) : uniform(r, n - 1);
    return k >= not ? k + 1 : k;
}

/* A bounded text buffer: appends stop (silently) at the end; the templates are far shorter. */
typedef struct {
    char s[1024];
    size_t len;
} textbuf;

static void put(textbuf *b, const char *s, size_t n)
{
    if (n > sizeof b->s - 1 - b->len)
        n = sizeof b->s - 1 - b->len;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void puts_(textbuf *b, const char *s) { put(b, s, strlen(s)); }

/* The words one sentence is made of. */
typedef struct {
    int noun, noun2;
} sentence_words;

/* Appends one sentence on topic t, from template tp, capitalised; fills *w. */
static void sentence(textbuf *b, sample_rng *r, const topic *t, const template *tp, sentence_words *w)
{
    w->noun = zipf(r, NOUNS, 2);
    w->noun2 = other(r, NOUNS, w->noun, true);
    int verb = uniform(r, VERBS), verb2 = other(r, VERBS, verb, false);
    const char *adj = adjectives[uniform(r, (int) (sizeof adjectives / sizeof *adjectives))];
    const char *person = people[uniform(r, (int) (sizeof people / sizeof *people))];
    const char *day = days[uniform(r, (int) (sizeof days / sizeof *days))];
    char num[8];
    int k = 2 + uniform(r, 59);
    num[0] = (char) ('0' + k / 10);
    num[1] = (char) ('0' + k % 10);
    num[2] = '\0';
    const char *knum = k < 10 ? num + 1 : num;
    size_t start = b->len;
    for (const char *p = tp->text; *p;) {
        if (p[0] == '{' && p[1] && p[2] == '}') {
            const char *v = "";
            switch (p[1]) {
            case 'N': v = t->nouns[w->noun]; break;
            case 'M': v = t->nouns[w->noun2]; break;
            case 'V': v = t->verbs[verb]; break;
            case 'W': v = t->verbs[verb2]; break;
            case 'A': v = adj; break;
            case 'P': v = person; break;
            case 'D': v = day; break;
            case 'K': v = knum; break;
            default: break;
            }
            puts_(b, v);
            p += 3;
        } else {
            put(b, p, 1);
            p++;
        }
    }
    if (b->len > start && b->s[start] >= 'a' && b->s[start] <= 'z')
        b->s[start] = (char) (b->s[start] - 'a' + 'A');
}

/* A tag from a noun: lower case, spaces as '-' ("query-plan"); newly allocated. */
static char *slug(const char *noun, size_t *len)
{
    size_t n = strlen(noun);
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    for (size_t i = 0; i <= n; i++) {
        char c = noun[i];
        s[i] = c == ' ' ? '-' : (c >= 'A' && c <= 'Z') ? (char) (c - 'A' + 'a') : c;
    }
    *len = n;
    return s;
}

/* Adds the slug of text unless the memory has it already. False when out of memory. */
static bool add_tag(sample_memory *m, const char *text)
{
    size_t len;
    char *s = slug(text, &len);
    if (!s)
        return false;
    for (int i = 0; i < m->ntags; i++)
        if (!strcmp(m->tags[i], s)) {
            free(s);
            return true;
        }
    m->tags[m->ntags] = s;
    m->tag_lens[m->ntags++] = len;
    return true;
}

bool sample_text_memory(uint64_t seed, int64_t index, sample_memory *m)
{
    memset(m, 0, sizeof *m);
    sample_rng r = sample_rng_stream(seed, STREAM_BASE + (uint64_t) index);
    sample_uuid(&r, m->id);
    int ti = zipf(&r, NTOPICS, 3);
    const topic *t = &topics[ti];
    int u = uniform(&r, 100);
    int nsent = u < 20 ? 1 : u < 60 ? 2 : u < 85 ? 3 : 4;
    /* one memory in six ends with a sentence on another topic */
    const topic *t2 = uniform(&r, 6) == 0 ? &topics[other(&r, NTOPICS, ti, false)] : NULL;
    int want_tags = 1 + uniform(&r, SAMPLE_TEXT_MAX_TAGS);
    textbuf b = {.len = 0};
    b.s[0] = '\0';
    sentence_words first = {0, 0};
    for (int i = 0; i < nsent; i++) {
        const template *tp = &templates[uniform(&r, NTEMPLATES)];
        sentence_words w;
        if (i > 0)
            put(&b, " ", 1);
        sentence(&b, &r, i == nsent - 1 && t2 && nsent > 1 ? t2 : t, tp, &w);
        if (i == 0) {
            m->node_type = tp->type;
            first = w;
        }
    }
    m->topic = t->name;
    m->content = malloc(b.len + 1);
    bool ok = m->content != NULL;
    if (ok) {
        memcpy(m->content, b.s, b.len + 1);
        m->content_len = b.len;
    }
    ok = ok && add_tag(m, t->name);
    if (ok && want_tags > 1)
        ok = add_tag(m, t->nouns[first.noun]);
    if (ok && want_tags > 2)
        ok = add_tag(m, t->nouns[first.noun2]);
    if (!ok)
        sample_memory_free(m);
    return ok;
}

void sample_memory_free(sample_memory *m)
{
    if (!m)
        return;
    free(m->content);
    m->content = NULL;
    for (int i = 0; i < m->ntags; i++)
        free(m->tags[i]);
    m->ntags = 0;
}
