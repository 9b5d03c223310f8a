// The vanity shop's page: the split key is made and completed here, with the vendored, audited
// @noble/secp256k1 and @noble/hashes (vendor/README.md); only the public key Q leaves the page.
import { getPublicKey, utils } from "./vendor/noble-secp256k1/index.js";
import { sha256 } from "./vendor/noble-hashes/sha2.js";
import { ripemd160 } from "./vendor/noble-hashes/legacy.js";

const $ = (id) => document.getElementById(id);

// -- keys: the same arithmetic as xwpy/apps/vanitygen/combine.py and candidates.py ------------------
const N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141n;
const LAMBDA = 0x5363AD4CC05C30E0A5261C028812645A122E22EA20816678DF02967C1B23BD72n;
const B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
const unhex = (text) => Uint8Array.from(text.match(/../g), (h) => parseInt(h, 16));
const bytes32 = (n) => unhex(n.toString(16).padStart(64, "0"));
const mod = (a) => ((a % N) + N) % N;

function powmod(b, e) {
  let r = 1n;
  for (b = mod(b); e > 0n; e >>= 1n, b = b * b % N) if (e & 1n) r = r * b % N;
  return r;
}

function base58check(payload) {
  const data = new Uint8Array([...payload, ...sha256(sha256(payload)).slice(0, 4)]);
  let n = BigInt("0x" + hex(data)), out = "";
  while (n > 0n) { out = B58[Number(n % 58n)] + out; n /= 58n; }
  for (const b of data) { if (b !== 0) break; out = "1" + out; }
  return out;
}

// The key that spends the found address: (-1)^negate * lambda^power * (k + q) mod N.
function combine(partialHex, candidate, secretHex) {
  const k = BigInt("0x" + partialHex), q = BigInt("0x" + secretHex), c = Number(candidate);
  if (!(k >= 0n && k < N) || !(q > 0n && q < N) || !(c >= 0 && c < 6)) throw new Error("bad partial key, candidate or secret");
  let f = powmod(LAMBDA, BigInt(c >> 1));
  if (c & 1) f = mod(-f);
  const key = f * mod(k + q) % N;
  if (key === 0n) throw new Error("partial key and secret cancel out");
  const pub = getPublicKey(bytes32(key), true);
  return {
    wif: base58check(new Uint8Array([0x80, ...bytes32(key), 0x01])),
    address: base58check(new Uint8Array([0x00, ...ripemd160(sha256(pub))])),
  };
}

const publicOf = (secretHex) => hex(getPublicKey(unhex(secretHex), true));

// The key for the next order, kept in this browser until an order uses it (then filed under its task).
function nextKey() {
  let q = localStorage.getItem("xwpy-shop-next");
  if (!q) { q = hex(utils.randomSecretKey()); localStorage.setItem("xwpy-shop-next", q); }
  return q;
}
function showKey() {
  const q = nextKey();
  $("k-secret").textContent = q;
  $("k-public").textContent = publicOf(q);
  $("public_key").value = publicOf(q);
}

window.xwpyShop = { combine, publicOf };  // for the browser test: the page's own arithmetic

// -- the order form ---------------------------------------------------------------------------------
let quote = null;    // the server's estimate and price for the prefix in the box
let busy = false;    // an order is on its way: a second click does nothing
let orderKey = null; // this order's idempotency key: a retry after a lost answer reuses it
let timer = null;

function fmt(n) {
  if (!isFinite(n)) return "∞";
  const units = [[1e18, "E"], [1e15, "P"], [1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
  for (const [size, u] of units) if (Math.abs(n) >= size) return (n / size).toPrecision(3) + u;
  return String(Math.round(n));
}

function chance(p, tries) {
  if (tries <= 0 || p <= 0) return 0;
  return -Math.expm1(tries * Math.log1p(-p));
}

async function api(method, path, body) {
  const opts = { method, headers: {} };
  if (body !== undefined) { opts.headers["content-type"] = "application/json"; opts.body = JSON.stringify(body); }
  const token = $("token").value.trim();
  if (token) opts.headers["authorization"] = "Bearer " + token;
  const r = await fetch(path, opts);
  let data = null;
  try { data = await r.json(); } catch (e) { data = { error: "the server answered " + r.status }; }
  return { status: r.status, ok: r.ok, data };
}

function refreshButton() {
  if (busy) return;
  const ready = quote !== null && quote.prefix === $("prefix").value.trim();
  $("submit").disabled = !ready;
  $("submit").textContent = ready ? `Order and pay ${quote.price_text}` : "Order and pay";
}

async function updateEstimate() {
  const prefix = $("prefix").value.trim();
  quote = null;
  refreshButton();
  const r = await api("GET", "/api/estimate?prefix=" + encodeURIComponent(prefix));
  if (prefix !== $("prefix").value.trim()) return;  // typed on meanwhile
  if (!r.ok) {
    $("estimate").textContent = "";
    $("quote").textContent = "";
    $("form-error").textContent = (r.data.field ? r.data.field + ": " : "") + r.data.error;
    return;
  }
  $("form-error").textContent = "";
  quote = r.data;
  $("signin").hidden = !quote.sign_in;
  $("estimate").textContent = `1 key in ${fmt(quote.expected_tries)} matches: ` +
    `50% / 90% / 99% chance within ${fmt(quote.tries_50)} / ${fmt(quote.tries_90)} / ${fmt(quote.tries_99)} keys`;
  $("quote").textContent = `Price: ${quote.price_text} · expected time: ${quote.expected_time} ` +
    `(90% within ${quote.time_90}, at ${fmt(quote.keys_per_second)} keys/s)`;
  refreshButton();
}

$("prefix").addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(updateEstimate, 200); });

$("order").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (busy || quote === null) return;
  busy = true;
  $("submit").disabled = true;
  $("submit").textContent = "Paying on the chain…";
  $("form-error").textContent = "";
  const publicKey = $("public_key").value.trim().toLowerCase();
  orderKey = orderKey || hex(crypto.getRandomValues(new Uint8Array(16)));
  let paid = false;
  try {
    const r = await api("POST", "/api/orders", { prefix: quote.prefix, public_key: publicKey,
                                                   max_price: quote.price, order_key: orderKey });
    orderKey = null;  // answered: the next order is a new one
    if (!r.ok) {
      $("form-error").textContent = (r.data.field ? r.data.field + ": " : "") + r.data.error;
      if (r.data.code === "sign_in") { $("signin").hidden = false; $("token").focus(); }
      return;
    }
    paid = true;
    const q = localStorage.getItem("xwpy-shop-next");
    if (q && publicOf(q) === publicKey) {  // this page's key: file it under the order, make the next one
      localStorage.setItem("xwpy-shop-order-" + r.data.task, q);
      localStorage.removeItem("xwpy-shop-next");
    }
    history.replaceState(null, "", "#order=" + r.data.task);
    $("submit").textContent = "Paid";
    $("again").hidden = false;
    follow(r.data.task, r.data);
  } catch (e) {
    $("form-error").textContent = "cannot reach the shop: " + e + " (pressing again retries the same order)";
  } finally {
    if (!paid) { busy = false; refreshButton(); }
  }
});

$("again").addEventListener("click", () => {
  history.replaceState(null, "", "#");
  $("follow").hidden = true;
  $("delivered").hidden = true;
  $("again").hidden = true;
  showKey();
  busy = false;
  following = null;
  refreshButton();
});

// -- following an order -----------------------------------------------------------------------------
let following = null;

function show(o) {
  $("follow").hidden = false;
  $("f-task").textContent = o.task + " (prefix " + o.prefix + ")";
  $("f-consumer").textContent = o.consumer;
  $("f-escrow").textContent = `${o.price_text} paid by ${o.requester} to the hub ${o.hub} (tx ${o.tx})`;
  let status = o.status;
  if (o.status === "REQUESTED") status += ` (deadline in ${o.deadline - o.chain_time} s of chain time)`;
  if (o.status === "REFUNDED") status += " (no result before the deadline: the escrow went back)";
  $("f-status").textContent = status;
  const g = o.grid;
  let grid = "—";
  let searched = 0;
  if (g && g.status === "NOT_SEEN") grid = "the oracle has not seen the request yet";
  else if (g) {
    searched = g.keys_searched;
    grid = `oracle ${g.status}: ${g.units_done} of ${g.units} units done, ${g.units_running} running ` +
           `(${fmt(g.keys_per_unit)} keys each; ${fmt(searched)} keys searched)` + (g.error ? " — " + g.error : "");
  }
  $("f-grid").textContent = grid;
  const p = o.delivered ? 1 : (quote && quote.prefix === o.prefix ? chance(quote.probability, searched) : null);
  $("f-chance").textContent = p === null ? "—" : (100 * p).toFixed(1) + "%";
  $("f-progress").value = p || 0;
  if (o.delivered) {
    const d = o.delivered;
    $("delivered").hidden = false;
    $("d-address").textContent = d.address;
    $("d-partial").textContent = d.partial_key;
    $("d-candidate").textContent = d.candidate;
    $("d-commit").textContent = `block ${o.block}, tx ${o.commit_tx}`;
    $("d-command").textContent = d.combine;
    const q = localStorage.getItem("xwpy-shop-order-" + o.task);
    let own = null;
    if (q && publicOf(q) === o.public_key) {
      own = combine(d.partial_key, d.candidate, q);
      if (own.address !== d.address) {
        $("f-error").textContent = `the combined key gives ${own.address}, not ${d.address}: the result is wrong`;
        own = null;
      }
    }
    $("d-own").hidden = own === null;
    $("d-cli").hidden = own !== null;
    if (own) { $("d-combined-address").textContent = own.address; $("d-wif").textContent = own.wif; }
  }
}

async function follow(task, first) {
  following = task;
  if (first) show(first);
  while (following === task) {
    let r;
    try { r = await api("GET", "/api/orders/" + task); }
    catch (e) { $("f-error").textContent = "cannot reach the shop: " + e; await new Promise((ok) => setTimeout(ok, 3000)); continue; }
    if (following !== task) return;
    if (!r.ok) { $("f-error").textContent = r.data.error; return; }
    $("f-error").textContent = "";
    show(r.data);
    if (r.data.status !== "REQUESTED") return;
    await new Promise((ok) => setTimeout(ok, 1000));
  }
}

showKey();
updateEstimate();
const m = location.hash.match(/^#order=(\d+)$/);
if (m) { busy = true; $("submit").disabled = true; $("again").hidden = false; follow(Number(m[1])); }
