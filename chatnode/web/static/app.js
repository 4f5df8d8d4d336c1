// distchat web page: one WebSocket per tab to the chat node, which runs this
// tab's own device session. Every message text is put into the page with
// textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);

// sidebarItems holds each conversation's sidebar item, updated in place: a
// button replaced between the mouse's press and release would get no click,
// and messages arriving re-render the sidebar at any moment.
const sidebarItems = new Map();

const state = {
  me: "",
  maxBody: 4000,
  convs: new Map(),   // key ("#room" or "@user") -> {key, msgs: [], ids: Set, unread}
  rooms: [],
  current: "",
  ws: null,
  ref: 0,
  pending: new Map(), // ref -> {li, id}
  shown: new Set(),   // ids of messages on the page
  presence: { online: [], in_room: {} },
  backoff: 500,
  stopped: false,
};

function tabId() {
  let id = sessionStorage.getItem("distchat-tab");
  if (!id || !/^[a-z0-9]{8,32}$/.test(id)) {
    id = newTabId();
    sessionStorage.setItem("distchat-tab", id);
  }
  return id;
}

function newTabId() {
  const abc = "abcdefghijklmnopqrstuvwxyz0123456789";
  const r = new Uint8Array(16);
  crypto.getRandomValues(r);
  return Array.from(r, (b) => abc[b % abc.length]).join("");
}

// ---- sign-in ----

async function start() {
  const res = await fetch("/api/me", { credentials: "same-origin" });
  if (res.ok) {
    const me = await res.json();
    enterChat(me);
  } else {
    showSignIn("");
  }
}

function showSignIn(msg) {
  state.stopped = true;
  if (state.ws) state.ws.close();
  $("chat-view").hidden = true;
  $("signin-view").hidden = false;
  $("signin-error").textContent = msg;
  $("user").focus();
}

$("signin").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("signin-error").textContent = "";
  let res;
  try {
    res = await fetch("/api/signin", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user: $("user").value, password: $("password").value }),
    });
  } catch (e) {
    $("signin-error").textContent = "cannot reach the chat node: " + e.message;
    return;
  }
  $("password").value = "";
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    $("signin-error").textContent = body.error || ("sign-in failed (" + res.status + ")");
    return;
  }
  enterChat(body);
});

$("signout").addEventListener("click", async () => {
  state.stopped = true;
  await fetch("/api/signout", { method: "POST", credentials: "same-origin" }).catch(() => {});
  sessionStorage.removeItem("distchat-tab");
  location.reload();
});

function enterChat(me) {
  state.me = me.user;
  if (me.max_body) state.maxBody = me.max_body;
  $("me").textContent = me.user;
  $("signin-view").hidden = true;
  $("chat-view").hidden = false;
  state.stopped = false;
  connect();
  $("text").focus();
}

// ---- the WebSocket ----

function connect() {
  const proto = location.protocol === "https:" ? "wss://" : "ws://";
  const ws = new WebSocket(proto + location.host + "/ws?tab=" + tabId());
  state.ws = ws;
  let fatal = null;
  ws.onopen = () => { state.backoff = 500; };
  ws.onmessage = (ev) => {
    let f;
    try { f = JSON.parse(ev.data); } catch (e) { return; }
    if (f.t === "fatal") fatal = f;
    handle(f);
  };
  ws.onclose = async (ev) => {
    if (state.ws !== ws || state.stopped) return;
    if (ev.reason === "taken-over") {
      // Another tab with a copy of this tab's id took it over: be a new device.
      sessionStorage.setItem("distchat-tab", newTabId());
    }
    if (fatal && (fatal.code === "refused" || fatal.code === "too-many-tabs")) {
      setStatus("stopped", "stopped");
      return;
    }
    setStatus("reconnecting", "connection to the chat node lost; reconnecting…");
    const res = await fetch("/api/me", { credentials: "same-origin" }).catch(() => null);
    if (res && res.status === 401) {
      showSignIn("your sign-in has ended; sign in again");
      return;
    }
    setTimeout(connect, state.backoff);
    state.backoff = Math.min(state.backoff * 2, 5000);
  };
}

function send(obj) {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return false;
  state.ws.send(JSON.stringify(obj));
  return true;
}

function handle(f) {
  switch (f.t) {
    case "hello":
      state.me = f.user;
      state.rooms = f.rooms || [];
      for (const r of state.rooms) conv("#" + r);
      if (!state.current && state.rooms.length) select("#" + state.rooms[0]);
      renderLists();
      break;
    case "msg": add(f.msg); break;
    case "status":
      if (f.state === "connected") setStatus("connected", "connected");
      else setStatus("reconnecting", "reconnecting…");
      break;
    case "presence":
      state.presence = { online: f.online || [], in_room: f.in_room || {} };
      renderOnline();
      break;
    case "ack": {
      const p = state.pending.get(f.ref);
      if (!p) break;
      p.id = f.id;
      if (state.shown.has(f.id)) { dropPending(f.ref); break; }
      if (f.queued) p.li.textContent = "queued, sent after the reconnect: " + p.text;
      break;
    }
    case "done": break;
    case "error": {
      notice(f.text, true);
      const p = state.pending.get(f.ref);
      if (p) { p.li.textContent = "not sent: " + p.text; p.li.classList.add("error"); state.pending.delete(f.ref); }
      break;
    }
    case "info": notice(f.text); break;
    case "fatal": notice(f.text, true); break;
  }
}

// ---- conversations ----

function conv(key) {
  let c = state.convs.get(key);
  if (!c) {
    c = { key, msgs: [], ids: new Set(), unread: 0 };
    state.convs.set(key, c);
  }
  return c;
}

// before orders messages: by the room log's sequence, else by send time.
function before(a, b) {
  if (a.room_seq && b.room_seq) return a.room_seq < b.room_seq;
  return a.sent_ns < b.sent_ns;
}

function add(m) {
  const c = conv(m.conv);
  if (c.ids.has(m.id)) return;
  c.ids.add(m.id);
  state.shown.add(m.id);
  for (const [ref, p] of state.pending) if (p.id === m.id) dropPending(ref);
  let i = c.msgs.length;
  while (i > 0 && before(m, c.msgs[i - 1])) i--;
  c.msgs.splice(i, 0, m);
  if (c.key === state.current) {
    const list = $("messages");
    const atEnd = list.scrollTop + list.clientHeight >= list.scrollHeight - 40;
    list.insertBefore(renderMsg(m), list.children[i] || null);
    if (atEnd) list.scrollTop = list.scrollHeight;
  } else if (m.via !== "history" && m.from !== state.me) {
    c.unread++;
  }
  renderLists();
}

function renderMsg(m) {
  const li = document.createElement("li");
  li.dataset.id = m.id;
  if (m.via === "history") li.classList.add("history");
  const time = document.createElement("span");
  time.className = "time";
  time.textContent = new Date(m.sent_ns / 1e6).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  const from = document.createElement("span");
  from.className = "from";
  from.textContent = m.kind === "me" ? "* " + m.from : m.from;
  const body = document.createElement("span");
  body.className = "body" + (m.kind === "me" ? " action" : "");
  body.textContent = m.body;
  li.append(time, from, body);
  return li;
}

function select(key) {
  state.current = key;
  const c = conv(key);
  c.unread = 0;
  $("title").textContent = key;
  const list = $("messages");
  list.replaceChildren(...c.msgs.map(renderMsg));
  list.scrollTop = list.scrollHeight;
  renderLists();
  renderOnline();
  $("sidebar").classList.remove("open");
  $("menu").setAttribute("aria-expanded", "false");
}

function renderLists() {
  const rooms = [], dms = [];
  for (const c of state.convs.values()) (c.key[0] === "#" ? rooms : dms).push(c);
  dms.sort((a, b) => a.key.localeCompare(b.key));
  place($("rooms"), rooms.filter((c) => state.rooms.includes(c.key.slice(1))).map(convItem));
  place($("dms"), dms.map(convItem));
}

// place makes items the list's children, touching the list only when they
// differ, so a button under the pointer stays in place.
function place(list, items) {
  const same = list.children.length === items.length && items.every((li, i) => list.children[i] === li);
  if (!same) list.replaceChildren(...items);
}

function convItem(c) {
  let it = sidebarItems.get(c.key);
  if (!it) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.conv = c.key;
    const name = document.createElement("span");
    name.textContent = c.key;
    const unread = document.createElement("span");
    unread.className = "unread";
    b.append(name, unread);
    b.addEventListener("click", () => { select(c.key); $("text").focus(); });
    li.append(b);
    it = { li, b, unread };
    sidebarItems.set(c.key, it);
  }
  if (c.key === state.current) it.b.setAttribute("aria-current", "true");
  else it.b.removeAttribute("aria-current");
  it.unread.textContent = c.unread ? String(c.unread) : "";
  if (c.unread) it.b.setAttribute("aria-label", c.key + ", " + c.unread + " unread");
  else it.b.removeAttribute("aria-label");
  return it.li;
}

// renderOnline lists who is online in the current room, or anywhere when a
// direct conversation is current.
function renderOnline() {
  const room = state.current[0] === "#" ? state.current.slice(1) : "";
  const users = room ? (state.presence.in_room[room] || []) : state.presence.online;
  $("online-h").textContent = room ? "Online in #" + room : "Online";
  $("online").replaceChildren(...users.map((u) => {
    const li = document.createElement("li");
    if (u === state.me) {
      li.textContent = u + " (you)";
      return li;
    }
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = u;
    b.setAttribute("aria-label", "message " + u);
    b.addEventListener("click", () => { select("@" + u); $("text").focus(); });
    li.append(b);
    return li;
  }));
}

function setStatus(st, text) {
  const s = $("status");
  s.dataset.state = st;
  s.textContent = text;
}

// notice shows one line under the messages: a failure (isError) or news.
function notice(text, isError) {
  const n = $("notice");
  n.textContent = text || "";
  n.classList.toggle("error", !!isError);
}

function dropPending(ref) {
  const p = state.pending.get(ref);
  if (!p) return;
  p.li.remove();
  state.pending.delete(ref);
}

// ---- composing ----

$("compose").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const input = $("text");
  let body = input.value;
  if (!body.trim()) return;
  if (!state.current) { notice("join a room first", true); return; }
  let kind = "";
  if (body.startsWith("/me ")) { kind = "me"; body = body.slice(4); }
  const size = new TextEncoder().encode(body).length;
  if (size > state.maxBody) {
    notice("not sent: the message is " + size + " bytes long, the limit is " + state.maxBody, true);
    return;
  }
  const ref = ++state.ref;
  if (!send({ t: "send", ref, conv: state.current, body, kind })) {
    notice("not sent: not connected to the chat node; try again in a moment", true);
    return;
  }
  notice("");
  const li = document.createElement("li");
  li.textContent = "sending: " + body;
  $("outbox").append(li);
  state.pending.set(ref, { li, id: "", text: body });
  input.value = "";
});

$("join").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const room = $("join-room").value.trim();
  if (!room) return;
  send({ t: "join", room });
  $("join-room").value = "";
  select("#" + room);
});

$("newdm").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const user = $("newdm-user").value.trim();
  if (!user) return;
  $("newdm-user").value = "";
  select("@" + user);
  $("text").focus();
});

$("menu").addEventListener("click", () => {
  const open = $("sidebar").classList.toggle("open");
  $("menu").setAttribute("aria-expanded", String(open));
});

start();
