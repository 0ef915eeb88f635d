// httpdns SRE dashboard: reads the admin API with the operator's token and offers the
// incident actions (drain, undrain, disable/enable an endpoint, reload, explain).
// Everything is built with textContent: zone names, reasons and errors are data, not HTML.
"use strict";

const TOKEN_KEY = "httpdns-admin-token";
const REFRESH_MS = 5000;
let refreshTimer = null;
let drainTarget = null;

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function token() { return sessionStorage.getItem(TOKEN_KEY); }

class ApiError extends Error {
  constructor(status, body) {
    const detail = body && (body.message || body.error) ? body.message || body.error : "";
    const errors = body && Array.isArray(body.errors) ? "\n" + body.errors.join("\n") : "";
    super(`${status}: ${detail}${errors}`);
    this.status = status;
  }
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${token()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = { message: text }; }
  if (!response.ok) throw new ApiError(response.status, json);
  return json;
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
}

function showNotice(message) {
  $("error").hidden = true;
  const box = $("notice");
  box.textContent = message;
  box.hidden = false;
}

function ago(ms) {
  if (!ms) return "never";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 90) return `${s}s ago`;
  if (s < 5400) return `${Math.round(s / 60)}m ago`;
  if (s < 172800) return `${(s / 3600).toFixed(1)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

function when(ms) { return ms ? `${new Date(ms).toISOString().replace(".000", "")} (${ago(ms)})` : "-"; }

async function act(question, method, path, body, done) {
  if (!window.confirm(question)) return;
  try {
    const answer = await api(method, path, body);
    showNotice(`${done} (epoch ${answer && answer.epoch !== undefined ? answer.epoch : "?"})`);
    await refresh();
  } catch (error) {
    if (error.status === 401) return loggedOut("Token refused: log in again.");
    showError(`Refused: ${error.message}`);
  }
}

function renderEndpoint(zone, e) {
  const state = e.disabled ? el("span", { class: "badge warn" }, "disabled")
    : !e.health_checked ? el("span", { class: "badge" }, "unchecked")
    : e.up ? el("span", { class: "badge ok" }, "up") : el("span", { class: "badge bad" }, "down");
  const ip = encodeURIComponent(e.ip);
  const toggle = e.disabled
    ? el("button", { class: "small", type: "button", onclick: () => act(`Enable endpoint ${e.ip}?`, "DELETE", `/admin/endpoints/${ip}/disable`, undefined, `Enabled ${e.ip}`) }, "Enable")
    : el("button", { class: "small", type: "button", onclick: () => {
        const reason = window.prompt(`Reason for disabling ${e.ip}:`, "");
        if (reason === null) return;
        act(`Disable endpoint ${e.ip} in ${zone}?`, "POST", `/admin/endpoints/${ip}/disable`, { reason }, `Disabled ${e.ip}`);
      } }, "Disable");
  return el("tr", { "data-endpoint": e.ip },
    el("td", {}, e.ip),
    el("td", { class: "num" }, e.weight),
    el("td", {}, state, e.disabled ? el("div", { class: "meta" }, `${e.disabled.reason || "no reason"} · ${e.disabled.by} · ${ago(e.disabled.at_ms)}`) : null),
    el("td", { class: "num" }, e.probe_rtt_ms == null ? "-" : `${e.probe_rtt_ms.toFixed(1)} ms`),
    el("td", {}, toggle));
}

function renderZone(z) {
  const drains = Object.entries(z.drains || {});
  const healthy = z.endpoints.filter((e) => e.up && !e.disabled).length;
  const keep = z.keep_weight_all_domains;
  const drained = drains.length > 0;
  const all = (z.drains || {})["*"];
  const target = all && all.to_weight !== keep ? ` → ${all.to_weight}%` : "";
  const card = el("article", {
    class: `card zone${drained ? " drained" : ""}${healthy === 0 ? " empty" : ""}`,
    "data-zone": z.zone,
  });
  card.append(el("h2", {},
    z.zone,
    el("span", { class: `badge ${healthy === 0 ? "bad" : healthy < z.endpoints.length ? "warn" : "ok"}` }, `${healthy}/${z.endpoints.length} healthy`),
    drained ? el("span", { class: "badge warn", "data-drain-state": "drained" }, `drained · keeps ${keep.toFixed(0)}%${target}`)
            : el("span", { class: "badge ok", "data-drain-state": "serving" }, "serving")));
  card.append(el("div", { class: "meta" }, `failover → ${z.failover.length ? z.failover.join(", ") : "none"}`));
  for (const [domain, d] of drains) {
    const ramping = d.ramp_ends_ms > Date.now();
    card.append(el("div", { class: "drain" },
      el("b", {}, domain === "*" ? "all domains" : domain), `: keeps ${d.keep_weight_now.toFixed(1)}%`,
      ramping ? ` → ${d.to_weight}% by ${new Date(d.ramp_ends_ms).toLocaleTimeString()}` : "",
      el("div", { class: "meta" }, `reason: ${d.reason || "-"} · by ${d.by} · since ${when(d.since_ms)}`)));
  }
  const failovers = z.recent_failovers;
  card.append(el("div", { class: "meta" }, failovers
    ? `failovers away from this zone: ${failovers.total}, last ${ago(failovers.last_ms)}`
    : "no failovers away from this zone"));
  card.append(el("table", {},
    el("thead", {}, el("tr", {}, ["endpoint", "weight", "health", "probe RTT", ""].map((h) => el("th", {}, h)))),
    el("tbody", {}, z.endpoints.map((e) => renderEndpoint(z.zone, e)))));
  const zone = encodeURIComponent(z.zone);
  card.append(el("div", { class: "actions" },
    el("button", { type: "button", class: "danger", "data-action": "drain", onclick: () => openDrain(z.zone) }, "Drain…"),
    drained ? el("button", { type: "button", "data-action": "undrain", onclick: () => {
      const over = window.prompt(`Undrain ${z.zone}: ramp back over (empty = at once, e.g. 10m)`, "");
      if (over === null) return;
      const query = over.trim() ? `?over=${encodeURIComponent(over.trim())}` : "";
      act(`Undrain ${z.zone}${query ? " over " + over.trim() : " at once"}?`, "DELETE", `/admin/zones/${zone}/drain${query}`, undefined, `Undrained ${z.zone}`);
    } }, "Undrain") : null));
  return card;
}

function renderSummary(zones, status) {
  const summary = $("summary");
  summary.replaceChildren();
  const last = status.last_reload;
  const reload = !last ? "no reload yet"
    : last.ok ? `reload ok ${ago(last.at_ms)} (${last.trigger})`
    : `RELOAD FAILED ${ago(last.at_ms)}: ${last.errors.join("; ")}`;
  const drained = zones.zones.filter((z) => Object.keys(z.drains || {}).length).length;
  summary.append(
    el("span", { id: "epoch" }, "epoch ", el("b", {}, zones.epoch)),
    el("span", {}, "zones ", el("b", {}, zones.zones.length)),
    el("span", {}, "drained ", el("b", {}, drained)),
    el("span", { id: "reload-status", class: last && !last.ok ? "badge bad" : "" }, reload),
    el("span", {}, `v${status.version} · updated ${new Date().toLocaleTimeString()}`),
    el("button", { type: "button", onclick: () => act("Reload config, zones and IP databases now?", "POST", "/admin/reload", undefined, "Reloaded") }, "Reload"));
}

async function renderCluster() {
  const section = $("cluster");
  let cluster;
  try {
    cluster = await api("GET", "/admin/cluster");
  } catch (error) {
    // 404: not clustered. Anything else is worth showing.
    section.hidden = true;
    if (error.status !== 404) throw error;
    return;
  }
  section.hidden = false;
  $("cluster-body").replaceChildren(
    el("div", { class: "meta" }, `this node ${cluster.node} · etcd ${cluster.etcd} · connected since ${when(cluster.since_ms)} · revision ${cluster.revision} · zones revision ${cluster.zones_revision}`),
    el("table", {},
      el("thead", {}, el("tr", {}, ["node", "revision", "zones revision", "last seen"].map((h) => el("th", {}, h)))),
      el("tbody", {}, (cluster.nodes || []).map((n) => el("tr", {},
        el("td", {}, n.node), el("td", { class: "num" }, n.revision),
        el("td", { class: "num" }, n.zones_revision), el("td", {}, ago(n.last_seen_ms)))))));
}

async function refresh() {
  if (!token()) return;
  try {
    const [zones, status] = await Promise.all([api("GET", "/admin/zones"), api("GET", "/admin/status")]);
    $("zones").replaceChildren(...zones.zones.map(renderZone));
    renderSummary(zones, status);
    await renderCluster();
  } catch (error) {
    if (error.status === 401) return loggedOut("Token refused (401): check the token and log in again.");
    showError(`Cannot load the admin API: ${error.message}`);
  }
}

function loggedIn() {
  $("login").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = false;
  refresh();
  clearInterval(refreshTimer);
  refreshTimer = setInterval(refresh, REFRESH_MS);
}

function loggedOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  clearInterval(refreshTimer);
  $("app").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("zones").replaceChildren();
  $("summary").replaceChildren();
  $("notice").hidden = true;
  if (message) showError(message); else $("error").hidden = true;
}

function openDrain(zone) {
  drainTarget = zone;
  $("drain-zone").textContent = zone;
  $("drain-dialog").showModal();
}

async function submitDrain() {
  const zone = drainTarget;
  const weight = Number($("drain-weight").value);
  const body = { weight, reason: $("drain-reason").value };
  const over = $("drain-over").value.trim();
  if (over) body.over = over;
  const domains = $("drain-domains").value.split(",").map((d) => d.trim()).filter(Boolean);
  if (domains.length) body.domains = domains;
  await act(`Drain ${zone} to ${weight}%${over ? " over " + over : ""}?`, "POST",
    `/admin/zones/${encodeURIComponent(zone)}/drain`, body, `Drained ${zone}`);
}

async function explain(event) {
  event.preventDefault();
  const host = $("explain-host").value.trim();
  const ip = $("explain-ip").value.trim();
  const out = $("explain-result");
  try {
    const e = await api("GET", `/admin/explain?host=${encodeURIComponent(host)}&ip=${encodeURIComponent(ip)}`);
    const geo = e.geo || {};
    out.replaceChildren(...[
      el("p", {}, el("b", {}, `${e.host} for ${e.client_ip}`), ` → ${e.answer_zone}`,
        e.failover ? " (failover)" : "", e.fail_open ? " (FAIL-OPEN)" : "",
        `: ${[...e.ips, ...e.ipsv6].join(", ") || "no IPs"} ttl ${e.ttl}`),
      el("p", { class: "meta" }, `geo ${[geo.country, geo.province, geo.city, geo.carrier].filter(Boolean).join(" / ") || "unknown"} · rule ${e.rule || "default"} · home ${e.home_zone}`),
      e.skipped.length ? el("p", { class: "meta" }, "skipped: " + e.skipped.map((s) => `${s.zone} (${s.reason}, keeps ${s.keep_weight}%)`).join(", ")) : null,
      el("pre", {}, JSON.stringify(e, null, 2))].filter(Boolean));
  } catch (error) {
    if (error.status === 401) return loggedOut("Token refused: log in again.");
    out.replaceChildren(el("div", { class: "error" }, `Refused: ${error.message}`));
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    $("token").value = "";
    $("error").hidden = true;
    loggedIn();
  });
  $("logout").addEventListener("click", () => loggedOut());
  $("explain-form").addEventListener("submit", explain);
  $("drain-form").addEventListener("submit", (event) => {
    if (event.submitter && event.submitter.value === "ok") {
      // Let the dialog close, then confirm and send.
      setTimeout(submitDrain, 0);
    }
  });
  if (token()) loggedIn();
});
