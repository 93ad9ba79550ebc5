/*! ShelfSense browser SDK v1 — dependency-free ES module. Docs: README "Browser SDK". */
// Nothing is stored or sent before consent. With consent, the SDK keeps one first-party
// anonymous session id (localStorage, else a cookie, on the storefront's own domain) and
// calls the store's API with a publishable key (ss_pub_…) from an allowed origin.

const SESSION_KEY = "shelfsense_sid";
const TOKEN_HEADER = "X-ShelfSense-User-Token";
const LIST_PATHS = {
  session: (o) => `sessions/${enc(o.sessionId)}`,
  trending: () => "trending",
  similar: (o) => `items/${enc(required(o.itemId, "itemId"))}/similar`,
  "bought-together": (o) => `items/${enc(required(o.itemId, "itemId"))}/bought-together`,
  personal: (o) => `users/${enc(o.userId)}`,
  "buy-again": (o) => `users/${enc(o.userId)}/buy-again`,
};
const SHOPPER_LISTS = new Set(["personal", "buy-again"]);

const state = { apiBase: "", key: "", consent: false, userToken: null, userId: null, sid: null };

function enc(value) {
  return encodeURIComponent(value);
}

function required(value, name) {
  if (value === undefined || value === null || value === "") {
    throw new TypeError(`shelfsense: ${name} is required`);
  }
  return value;
}

function randomId() {
  if (globalThis.crypto && crypto.randomUUID) return crypto.randomUUID().replace(/-/g, "");
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The shopper id a user token names (its first part is the base64url id). */
function tokenUserId(token) {
  const encoded = String(token).split(".")[0].replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(encoded + "=".repeat((4 - (encoded.length % 4)) % 4));
  return new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
}

function readStoredSession() {
  try {
    const stored = localStorage.getItem(SESSION_KEY);
    if (stored) return stored;
  } catch (_) {
    /* storage blocked: fall back to the cookie */
  }
  const match = document.cookie.match(new RegExp(`(?:^|; )${SESSION_KEY}=([^;]+)`));
  return match ? decodeURIComponent(match[1]) : null;
}

function storeSession(sid) {
  try {
    localStorage.setItem(SESSION_KEY, sid);
    return;
  } catch (_) {
    /* storage blocked */
  }
  document.cookie = `${SESSION_KEY}=${enc(sid)}; path=/; max-age=${60 * 60 * 24 * 365}; SameSite=Lax`;
}

function forgetSession() {
  try {
    localStorage.removeItem(SESSION_KEY);
  } catch (_) {
    /* storage blocked */
  }
  document.cookie = `${SESSION_KEY}=; path=/; max-age=0; SameSite=Lax`;
}

/** The anonymous session id (created on first use after consent), or null without consent. */
export function sessionId() {
  if (!state.consent) return null;
  if (!state.sid) {
    state.sid = readStoredSession() || randomId();
    storeSession(state.sid);
  }
  return state.sid;
}

/**
 * Configure the SDK.
 * apiBase: the store's API host, e.g. "https://mystore.shelfsense.example".
 * key: a publishable key (ss_pub_…). consent: whether the visitor agreed (default false).
 * userToken: optional, a token your backend signed for the signed-in shopper.
 */
export function init({ apiBase, key, consent = false, userToken = null } = {}) {
  required(apiBase, "apiBase");
  if (!String(required(key, "key")).startsWith("ss_pub_")) {
    throw new TypeError("shelfsense: use a publishable key (ss_pub_…), never a secret key");
  }
  state.apiBase = String(apiBase).replace(/\/+$/, "");
  state.key = key;
  state.sid = null;
  setConsent(consent);
  identify(userToken);
}

/** Turn sending on or off. Turning it off also forgets the stored session id. */
export function setConsent(granted) {
  state.consent = Boolean(granted);
  if (!state.consent) {
    state.sid = null;
    forgetSession();
  }
}

/** Act for a signed-in shopper (a token from your backend), or null to go back to anonymous. */
export function identify(userToken) {
  state.userToken = userToken || null;
  state.userId = userToken ? tokenUserId(userToken) : null;
}

async function call(path, { method = "GET", body, token = state.userToken } = {}) {
  const headers = { Authorization: `Bearer ${state.key}` };
  if (token) headers[TOKEN_HEADER] = token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`${state.apiBase}/api/v1/${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    mode: "cors",
    credentials: "omit",
    keepalive: method === "POST",
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = new Error(data?.error?.message || `HTTP ${response.status}`);
    error.status = response.status;
    error.code = data?.error?.code;
    error.retryAfter = Number(response.headers.get("Retry-After")) || undefined;
    throw error;
  }
  return data;
}

/**
 * Record an event: type is "view", "add_to_cart", "purchase", "click" or "dismiss".
 * extra: {value, orderId, recommendationId}. Resolves to the API's answer, or null (sending
 * nothing) without consent.
 */
export async function track(type, itemId, extra = {}) {
  const sid = sessionId();
  if (!sid) return null;
  const event = {
    event_id: randomId(),
    session_id: sid,
    item_id: required(itemId, "itemId"),
    type: required(type, "type"),
    timestamp: new Date().toISOString(),
  };
  if (state.userId) event.user_id = state.userId;
  if (extra.value !== undefined) event.value = extra.value;
  if (extra.orderId) event.order_id = extra.orderId;
  if (extra.recommendationId) event.recommendation_id = extra.recommendationId;
  return call("events/bulk", { method: "POST", body: [event] });
}

/**
 * A list: {placement, scenario, k, itemId, sessionId, userToken, category, inStock}.
 * placement is a list kind: "session" (default), "trending", "similar", "bought-together"
 * (itemId), or "personal", "buy-again" (a userToken, from the options or identify()); or the
 * name of a placement set up in the dashboard, with its scenario (one of those kinds) as
 * `scenario`. Resolves to {recommendation_id, model_version, strategy, items: [{item_id,
 * score}]}; without consent to an empty list, sending nothing.
 */
export async function recommend(options = {}) {
  const placement = options.placement || "session";
  const named = !(placement in LIST_PATHS);
  const scenario = named ? options.scenario : placement;
  const build = LIST_PATHS[scenario];
  if (!build) {
    throw new TypeError(`shelfsense: placement "${placement}" needs a known scenario`);
  }
  const empty = { recommendation_id: null, model_version: "", strategy: "", items: [] };
  const sid = options.sessionId || sessionId();
  if (!state.consent || !sid) return empty;
  const token = options.userToken || state.userToken;
  const pathOptions = { ...options, sessionId: sid };
  if (SHOPPER_LISTS.has(scenario)) {
    pathOptions.userId = tokenUserId(required(token, "userToken"));
  }
  const query = new URLSearchParams();
  if (named) query.set("placement", placement);
  if (options.k) query.set("k", String(options.k));
  if (options.category) query.set("category", options.category);
  if (options.inStock === false) query.set("in_stock", "false");
  const suffix = query.toString() ? `?${query}` : "";
  return call(`recommendations/${build(pathOptions)}${suffix}`, { token });
}

/**
 * Render a list into `element` as an accessible list of links; a click on one sends a click
 * event carrying the list's recommendation_id. options: the recommend() options plus
 * title (heading text, default "Recommended for you"), describe(itemId) → {title, url}
 * (default: the id, and itemUrl with "{item_id}" replaced), itemUrl ("/products/{item_id}").
 * Resolves to the list shown.
 */
export async function render(element, options = {}) {
  const title = options.title || "Recommended for you";
  const itemUrl = options.itemUrl || "/products/{item_id}";
  const describe =
    options.describe || ((id) => ({ title: id, url: itemUrl.replace("{item_id}", enc(id)) }));
  element.setAttribute("aria-busy", "true");
  let list;
  try {
    list = await recommend(options);
  } finally {
    element.removeAttribute("aria-busy");
  }
  element.replaceChildren();
  if (!list.items.length) return list;
  const headingId = `shelfsense-${randomId().slice(0, 8)}`;
  const section = document.createElement("section");
  section.className = "shelfsense";
  section.setAttribute("aria-labelledby", headingId);
  const heading = document.createElement("h2");
  heading.id = headingId;
  heading.textContent = title;
  const ul = document.createElement("ul");
  ul.setAttribute("aria-labelledby", headingId);
  list.items.forEach((item, index) => {
    const info = describe(item.item_id) || {};
    const li = document.createElement("li");
    const link = document.createElement("a");
    link.href = info.url || itemUrl.replace("{item_id}", enc(item.item_id));
    link.textContent = info.title || item.item_id;
    link.dataset.itemId = item.item_id;
    link.dataset.recommendationId = list.recommendation_id;
    link.setAttribute(
      "aria-label",
      `${link.textContent} (recommendation ${index + 1} of ${list.items.length})`,
    );
    link.addEventListener("click", () => {
      // keepalive: the event still goes out when the click navigates away.
      track("click", item.item_id, { recommendationId: list.recommendation_id }).catch(() => {});
    });
    li.append(link);
    ul.append(li);
  });
  section.append(heading, ul);
  element.append(section);
  return list;
}

export default { init, setConsent, identify, sessionId, track, recommend, render };
