// The xwpy dashboard. Reads the coordinator's JSON API with the signed-in user's token (kept in
// this tab's sessionStorage, sent as a bearer header, never put in a URL), so it shows exactly what
// the API lets that token see. Builds the page with DOM calls (textContent, never innerHTML), and
// follows changes through a long poll (/dashboard/feed) instead of reloading.
import { linePlot } from "./plot.js";

const KEY = "xwpy.token";
const STATUSES = ["PENDING", "RUNNING", "COMPLETED", "ERROR", "CANCELLED"];
const FEED_WAIT = 20; // seconds a feed request parks: progress is refreshed at least this often
const MIN_GAP = 1000; // ms between two refreshes at least (the feed itself wakes a page at most once a second)

const $ = (id) => document.getElementById(id);
const state = { site: null, version: -1, selected: null, hosts: new Map(), generation: 0 };

class Unauthorized extends Error {}

async function api(path) {
  const token = sessionStorage.getItem(KEY);
  const r = await fetch("/api/v1" + path, {
    headers: { authorization: "Bearer " + token, accept: "application/json" },
    cache: "no-store",
  });
  let body = null;
  try { body = await r.json(); } catch { body = null; }
  if (r.status === 401) throw new Unauthorized((body && body.message) || "not signed in");
  if (!r.ok) throw new Error((body && body.message) || `${r.status} ${r.statusText}`);
  return body;
}

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") e.className = v;
    else if (k === "data") Object.assign(e.dataset, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return e;
}

// rows: arrays of cells (text or nodes), one per header; on narrow screens each cell shows its header.
function fill(table, headers, rows, empty) {
  const head = el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", { scope: "col" }, h))));
  const body = el("tbody");
  for (const row of rows) {
    body.append(el("tr", {}, ...row.map((cell, i) => el("td", { data: { label: headers[i] } }, cell))));
  }
  if (!rows.length) body.append(el("tr", {}, el("td", { colSpan: headers.length, class: "muted" }, empty)));
  table.replaceChildren(head, body);
}

const pct = (x) => (x == null ? "" : `${Math.round(x * 100)}%`);
const short = (sha) => (sha ? sha.slice(0, 12) : "");
const when = (t) => (t ? new Date(t * 1000).toLocaleString() : "");
// An admin's listings cover every owner (the API's ?all=1); everyone else's are their own.
const query = (params) => {
  const q = new URLSearchParams(params);
  if (state.site && state.site.admin) q.set("all", "1");
  return "?" + q.toString();
};

function statusCell(s) {
  return el("span", { class: `status-${s}` }, s);
}

function jobLink(id) {
  const b = el("button", { type: "button", class: "link", title: `show job ${id}` }, String(id));
  b.addEventListener("click", () => select(id));
  return b;
}

// -- sections ------------------------------------------------------------------------------------

function showCounts(counts) {
  $("counts").replaceChildren(...STATUSES.map((s) =>
    el("div", { class: "count", id: `count-${s}` }, el("b", {}, String(counts[s] || 0)), statusCell(s))));
}

function showBatches(batches) {
  fill($("batches"), ["Batch", "Progress", "Done", "Running", "Pending", "Errors"], batches.map((b) => [
    b.batch || "(none)",
    el("progress", { max: b.total || 1, value: b.final, title: `${b.final} of ${b.total} final` }),
    `${b.counts.COMPLETED} / ${b.total}`, b.counts.RUNNING, b.counts.PENDING, b.counts.ERROR + b.counts.CANCELLED,
  ]), "no jobs yet");
}

function showJobs(jobs) {
  fill($("jobs"), ["Job", "App", "Batch", "Owner", "Status", "Done", "Why / error"], jobs.map((j) => [
    jobLink(j.id), j.app, j.batch || "", j.owner, statusCell(j.status), pct(j.progress),
    el("span", { class: j.error ? "error" : "why" }, j.error || j.why || ""),
  ]), "no jobs yet");
}

function hostName(id) {
  const h = state.hosts.get(id);
  return h ? `${h.name} (${id})` : `host ${id}`;
}

function showJob(job) {
  $("job-section").hidden = false;
  $("job-title").textContent = `Job ${job.id}: ${job.app}${job.batch ? " · batch " + job.batch : ""}`;
  $("job-status").replaceChildren(statusCell(job.status),
    ` · quorum ${job.quorum} of ${job.replication}`,
    job.progress != null ? ` · ${pct(job.progress)} done` : "",
    job.result_sha256 ? ` · result ${short(job.result_sha256)}` : "",
    ` · submitted ${when(job.submitted_at)}`);
  const why = job.error || job.why || "";
  $("job-why").className = job.error ? "error" : "why";
  $("job-why").textContent = why ? (job.error ? "error: " : job.stalled ? "stalled: " : "waiting: ") + why : "";
  fill($("replicas"), ["Replica", "Host", "Status", "Validation", "Exit", "Digest", "Error"], job.replicas.map((r) => [
    r.id, hostName(r.host_id), statusCell(r.status), r.validation, r.exit_code ?? "",
    el("span", { class: "digest", title: r.result_sha256 || "" }, short(r.result_sha256)), r.error || "",
  ]), "no replica yet: the job waits for a host");
  const tails = job.replicas.filter((r) => r.stderr_tail);
  $("stderr").replaceChildren(...tails.map((r) =>
    el("details", {}, el("summary", {}, `stderr of replica ${r.id} (exit ${r.exit_code ?? "?"})`), el("pre", {}, r.stderr_tail))));
}

function showHosts(hosts) {
  state.hosts = new Map(hosts.map((h) => [h.id, h]));
  fill($("hosts"), ["Host", "Owner", "State", "Platform", "Load", "Reputation", "Work done", "Last heard"], hosts.map((h) => {
    const st = !h.alive ? "down" : h.suspended ? "suspended" : "alive";
    return [
      `${h.name} (${h.id})`, h.owner,
      el("span", { class: `status-${st}` }, st + (h.suspended && h.alive ? `: ${h.suspended}` : "")),
      h.platform || h.os, `${h.running} / ${h.cpus} cores`, h.reputation, `${h.done} valid`, when(h.last_alive),
    ];
  }), "no hosts of yours: a volunteer's machines appear here once its worker registers");
}

function showThroughput(t) {
  linePlot($("plot-certified"), t.points.map((p) => [p.t, p.certified_per_minute]));
  linePlot($("plot-queued"), t.points.map((p) => [p.t, p.queued]));
}

async function showChain() {
  const { tasks } = await api("/chain/tasks?limit=100");
  fill($("chain"), ["Task", "App", "Status", "Jobs", "Commit", "Transaction"], tasks.map((t) => [
    t.task, t.app, statusCell(t.status), t.jobs.join(", "), short(t.digest), el("span", { class: "digest" }, t.commit_tx || ""),
  ]), "no request seen yet");
}

// -- the live loop -------------------------------------------------------------------------------

async function refresh() {
  // seen: the pages woken by the same change share the server's reads.
  const seen = { seen: Math.max(state.version, 0) };
  const [jobs, hosts, throughput] = await Promise.all([
    api("/dashboard/jobs" + query(seen)), api("/dashboard/hosts?" + new URLSearchParams(seen)),
    api("/dashboard/throughput"),
  ]);
  showCounts(jobs.counts);
  showBatches(jobs.batches);
  showJobs(jobs.jobs);
  showHosts(hosts.hosts);
  showThroughput(throughput);
  if (state.selected != null) showJob(await api(`/jobs/${state.selected}`));
  if (state.site.oracle) await showChain();
  document.body.dataset.version = String(state.version); // tests and scripts: what the page has shown
}

const delay = (ms) => new Promise((r) => setTimeout(r, ms));

async function live(generation) {
  let failures = 0;
  while (generation === state.generation) {
    const started = Date.now();
    try {
      const wait = state.version < 0 ? 0 : FEED_WAIT;
      const feed = await api(`/dashboard/feed?after=${state.version}&wait=${wait}`);
      if (generation !== state.generation) return;
      state.version = feed.version;
      await refresh();
      failures = 0;
      $("live").textContent = `live · updated ${new Date().toLocaleTimeString()}`;
    } catch (e) {
      if (e instanceof Unauthorized) { signOut(e.message); return; }
      failures += 1;
      $("live").textContent = `connection lost (${e.message}); retrying`;
      await delay(Math.min(30000, 1000 * 2 ** failures));
    }
    await delay(Math.max(0, MIN_GAP - (Date.now() - started)));
  }
}

async function select(id) {
  state.selected = id;
  try {
    showJob(await api(`/jobs/${id}`));
    $("job-section").scrollIntoView({ block: "nearest" });
  } catch (e) {
    $("job-why").textContent = e.message;
  }
}

// -- signing in and out --------------------------------------------------------------------------

async function start() {
  state.site = await api("/dashboard/site");
  $("who").textContent = `${state.site.login} (${state.site.role})`;
  $("signin").hidden = true;
  $("board").hidden = false;
  $("signout").hidden = false;
  $("chain-section").hidden = !state.site.oracle;
  state.version = -1;
  state.generation += 1;
  live(state.generation);
}

function signOut(message) {
  sessionStorage.removeItem(KEY);
  state.generation += 1;
  state.site = null;
  state.selected = null;
  $("board").hidden = true;
  $("signout").hidden = true;
  $("signin").hidden = false;
  $("who").textContent = "";
  $("signin-error").textContent = message || "";
}

$("signin-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const token = $("token").value.trim();
  $("token").value = "";
  if (!token) return;
  sessionStorage.setItem(KEY, token);
  try {
    await start();
    $("signin-error").textContent = "";
  } catch (e) {
    signOut(e instanceof Unauthorized ? "that token is not valid here" : e.message);
  }
});
$("signout").addEventListener("click", () => signOut(""));
$("job-close").addEventListener("click", () => { state.selected = null; $("job-section").hidden = true; });

if (sessionStorage.getItem(KEY)) start().catch((e) => signOut(e.message));
