// The web chat: talks to /api, renders answers with DOM nodes only (never innerHTML), streams replies.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const messages = $("messages"), form = $("ask"), box = $("question"), send = $("send"), status = $("status");
  const dialog = $("human-dialog"), humanForm = $("human-form"), humanError = $("human-error");
  let conversation = sessionStorage.getItem("itbot-conversation");
  let lastAgentId = 0, polling = null, lastStatus = null, busy = false;
  const shownTickets = new Set(), offeredRatings = new Set();

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "text") node.textContent = value; else node.setAttribute(key, value);
    }
    for (const child of children || []) node.append(child);
    return node;
  }

  // Inline: **bold** and http(s) links, as text nodes and elements.
  function inline(text) {
    const out = [];
    const pattern = /\*\*([^*]+)\*\*|(https?:\/\/[^\s<>()]+[^\s<>().,;:!?'"])/g;
    let at = 0, match;
    while ((match = pattern.exec(text)) !== null) {
      if (match.index > at) out.push(document.createTextNode(text.slice(at, match.index)));
      if (match[1] !== undefined) out.push(el("strong", { text: match[1] }));
      else out.push(el("a", { href: match[2], text: match[2], target: "_blank", rel: "noopener noreferrer" }));
      at = pattern.lastIndex;
    }
    if (at < text.length) out.push(document.createTextNode(text.slice(at)));
    return out;
  }

  // Blocks: paragraphs, numbered steps as <ol>, bullets as <ul>.
  function render(text) {
    const body = el("div", { class: "body" });
    let list = null;
    for (const raw of text.split("\n")) {
      const line = raw.trim();
      const step = line.match(/^(\d+)[.)]\s+(.*)$/), bullet = line.match(/^[-•*]\s+(.*)$/);
      if (step || bullet) {
        const kind = step ? "ol" : "ul";
        if (!list || list.tagName.toLowerCase() !== kind) {
          list = el(kind, step && step[1] !== "1" ? { start: step[1] } : {});
          body.append(list);
        }
        list.append(el("li", {}, inline(step ? step[2] : bullet[1])));
      } else if (line) {
        list = null;
        body.append(el("p", {}, inline(line)));
      } else {
        list = null;
      }
    }
    return body;
  }

  function add(kind, who, content) {
    const node = el("div", { class: "message " + kind }, [el("span", { class: "who", text: who })]);
    node.append(content);
    messages.append(node);
    node.scrollIntoView({ block: "end" });
    return node;
  }

  async function api(path, options) {
    const response = await fetch("/api" + path, Object.assign({ headers: { "Content-Type": "application/json" } },
                                                               options || {}));
    if (!response.ok) {
      let message = "Something went wrong (HTTP " + response.status + ").";
      try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
      throw new Error(message);
    }
    return response;
  }

  async function ensureConversation() {
    if (conversation) return conversation;
    const response = await api("/conversations", { method: "POST", body: "{}" });
    conversation = (await response.json()).conversation;
    sessionStorage.setItem("itbot-conversation", conversation);
    return conversation;
  }

  // Server-Sent Events from a POST: read the stream and hand each event to onEvent(name, data).
  async function readEvents(response, onEvent) {
    const reader = response.body.getReader(), decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const chunk = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let name = "message", data = "";
        for (const line of chunk.split("\n")) {
          if (line.startsWith("event: ")) name = line.slice(7);
          else if (line.startsWith("data: ")) data += line.slice(6);
        }
        onEvent(name, data ? JSON.parse(data) : {});
      }
    }
  }

  function feedbackButtons(answer) {
    const bar = el("div", { class: "feedback", role: "group", "aria-label": "Was this helpful?" });
    const up = el("button", { type: "button", class: "secondary", "data-kind": "up", "aria-pressed": "false",
                              text: "Helpful" });
    const down = el("button", { type: "button", class: "secondary", "data-kind": "down", "aria-pressed": "false",
                                text: "Not helpful" });
    const thanks = el("span", { class: "thanks", role: "status" });
    async function rate(helpful) {
      try {
        await api("/conversations/" + conversation + "/feedback", {
          method: "POST", body: JSON.stringify({ message_id: answer.message_id, helpful: helpful }) });
        up.setAttribute("aria-pressed", String(helpful));
        down.setAttribute("aria-pressed", String(!helpful));
        thanks.textContent = helpful ? "Thanks! Glad it helped." :
          "Thanks for telling me. Try describing it differently, or talk to a human.";
      } catch (error) { thanks.textContent = error.message; }
    }
    up.addEventListener("click", () => rate(true));
    down.addEventListener("click", () => rate(false));
    bar.append(up, down, thanks);
    return bar;
  }

  function showAnswer(node, answer) {
    node.classList.remove("streaming");
    node.querySelector(".body").replaceWith(render(answer.text));
    if (answer.known_issue) {
      const since = new Date(answer.known_issue.since);
      const at = isNaN(since) ? "" : " (since " + since.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) + ")";
      node.querySelector(".body").before(el("p", { class: "known-issue", role: "note" },
        [el("strong", { text: "\u{1F6A8} Known issue: " }), document.createTextNode(answer.known_issue.text + at)]));
    }
    if (answer.notice) node.append(el("p", { class: "sources", text: answer.notice }));
    if (answer.sources.length) {
      node.append(el("p", { class: "sources", text: "Sources: " + answer.sources.map((s) => s.title).join("; ") }));
    }
    if (answer.choices.length) {
      if (answer.choices_prompt) node.append(el("p", { class: "sources", text: answer.choices_prompt }));
      const label = answer.choices_prompt || "Choose a topic";
      const choices = el("div", { class: "choices", role: "group", "aria-label": label });
      for (const choice of answer.choices) {
        const button = el("button", { type: "button", class: "choice", text: choice.label });
        button.addEventListener("click", () => ask(choice.label, choice.topic));
        choices.append(button);
      }
      node.append(choices);
    }
    if (answer.offer_human) {
      const button = el("button", { type: "button", class: "secondary", text: "Talk to a human" });
      button.addEventListener("click", openHuman);
      node.append(el("div", { class: "choices" }, [button]));
    }
    if (answer.message_id) node.append(feedbackButtons(answer));
  }

  async function ask(text, topic) {
    if (busy || !text.trim()) return;
    busy = true;
    send.disabled = true;
    add("user", "You", document.createTextNode(text));
    const node = add("bot streaming", "IT assistant", el("div", { class: "body" }));
    node.setAttribute("aria-busy", "true");
    status.textContent = "The assistant is answering…";
    let streamed = "";
    try {
      await ensureConversation();
      const response = await api("/conversations/" + conversation + "/messages", {
        method: "POST", body: JSON.stringify(topic ? { text: text, topic: topic } : { text: text }) });
      await readEvents(response, (name, data) => {
        if (name === "token") {
          streamed += data.text;
          node.querySelector(".body").textContent = streamed;
        } else if (name === "answer") {
          showAnswer(node, data);
        } else if (name === "relay" || name === "error") {
          node.classList.remove("streaming");
          node.className = "message notice";
          node.querySelector(".body").textContent = data.text || data.error;
        }
      });
    } catch (error) {
      node.className = "message notice";
      node.querySelector(".body").textContent = error.message;
      if (/conversation/i.test(error.message)) { conversation = null; sessionStorage.removeItem("itbot-conversation"); }
    } finally {
      node.removeAttribute("aria-busy");
      status.textContent = "";
      busy = false;
      send.disabled = false;
      box.focus();
    }
  }

  function openHuman() {
    humanError.textContent = "";
    dialog.showModal();
    $("contact").focus();
  }

  // The request became a ticket in the helpdesk's ticket system: say so once, with its link when it has one.
  function showTicket(update) {
    const key = update.escalation_id + ":" + update.ticket_id;
    if (!update.ticket_id || shownTickets.has(key)) return;
    shownTickets.add(key);
    const ref = /^https?:\/\//.test(update.ticket_url || "")
      ? el("a", { href: update.ticket_url, text: update.ticket_id, target: "_blank", rel: "noopener noreferrer" })
      : el("strong", { text: update.ticket_id });
    add("notice ticket", "Helpdesk", el("p", {}, [
      document.createTextNode("Ticket "), ref, document.createTextNode(" opened: your request #" +
        update.escalation_id + " is in the helpdesk's ticket system. Quote it if you contact them another way.")]));
  }

  // A resolved request not yet rated: 1 (poor) to 5 (great), stored as Slack's rating buttons store it.
  function offerRating(update) {
    if (update.escalation_status !== "resolved" || update.satisfaction || offeredRatings.has(update.escalation_id)) {
      return;
    }
    offeredRatings.add(update.escalation_id);
    const bar = el("div", { class: "feedback rating", role: "group",
                            "aria-label": "How did we do? 1 is poor, 5 is great" });
    const thanks = el("span", { class: "thanks", role: "status" });
    const buttons = [1, 2, 3, 4, 5].map((n) => {
      const button = el("button", { type: "button", class: "secondary", "data-rating": String(n),
                                    "aria-pressed": "false", "aria-label": n + " out of 5", text: String(n) });
      button.addEventListener("click", async () => {
        try {
          await api("/conversations/" + conversation + "/rating", {
            method: "POST", body: JSON.stringify({ escalation_id: update.escalation_id, rating: n }) });
          for (const other of buttons) other.setAttribute("aria-pressed", String(other === button));
          thanks.textContent = "Thanks for rating us " + n + "/5!";
        } catch (error) { thanks.textContent = error.message; }
      });
      return button;
    });
    bar.append(...buttons, thanks);
    add("notice", "Helpdesk", el("div", {}, [
      el("p", { text: "How did we do with request #" + update.escalation_id + "? (1 = poor, 5 = great)" }), bar]));
  }

  async function poll() {
    if (!conversation) return;
    try {
      const response = await api("/conversations/" + conversation + "/updates?after=" + lastAgentId);
      const update = await response.json();
      for (const message of update.messages) {
        lastAgentId = Math.max(lastAgentId, message.id);
        add("agent", "Helpdesk", render(message.text));
      }
      if (update.escalation_status !== lastStatus) {
        const said = { claimed: "A helpdesk agent picked up your request: their replies appear here, and your " +
                                "messages go to them.",
                       resolved: "Your request was resolved. Thanks for your patience!",
                       cancelled: "Your request was cancelled." }[update.escalation_status];
        if (said && lastStatus !== null) add("notice", "Helpdesk", document.createTextNode(said));
        lastStatus = update.escalation_status;
      }
      showTicket(update);
      offerRating(update);
      if (update.escalation_status === "resolved" || update.escalation_status === "cancelled") {
        clearInterval(polling); polling = null;
      }
    } catch (error) { /* try again at the next tick */ }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = box.value;
    box.value = "";
    ask(text);
  });
  box.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); form.requestSubmit(); }
  });
  $("human").addEventListener("click", openHuman);
  $("human-cancel").addEventListener("click", () => dialog.close());
  humanForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const submit = $("human-submit");
    submit.disabled = true;
    try {
      await ensureConversation();
      const response = await api("/conversations/" + conversation + "/escalation", {
        method: "POST", body: JSON.stringify({ contact: $("contact").value, urgency: $("urgency").value,
                                               details: $("details").value || null }) });
      const result = await response.json();
      dialog.close();
      add("notice", "Helpdesk", document.createTextNode(result.message));
      lastStatus = result.status;
      if (!polling) polling = setInterval(poll, 3000);
      box.focus();
    } catch (error) {
      humanError.textContent = error.message;
    } finally { submit.disabled = false; }
  });
  if (conversation) {  // a reload: keep following an escalation still in progress
    poll().then(() => {
      if (lastStatus === "open" || lastStatus === "claimed") polling = setInterval(poll, 3000);
    });
  }
  box.focus();
})();
