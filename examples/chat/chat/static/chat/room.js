// The room page: one websocket to /ws/chat/<room>/. User text only ever goes
// into the page through textContent, so markup in a message stays text.
"use strict";

(() => {
  const room = JSON.parse(document.getElementById("room-name").textContent);
  const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
  const url = `${scheme}${window.location.host}/ws/chat/${encodeURIComponent(room)}/`;
  const messages = document.getElementById("messages");
  const count = document.getElementById("count");
  const names = document.getElementById("names");
  const connection = document.getElementById("connection");
  const form = document.getElementById("say");
  const input = document.getElementById("message");
  const socket = new WebSocket(url);

  function addLine(className, name, text) {
    const item = document.createElement("li");
    item.className = className;
    if (name !== null) {
      const who = document.createElement("strong");
      who.textContent = name;
      item.append(who, " ");
    }
    const body = document.createElement("span");
    body.className = "text";
    body.textContent = text;
    item.append(body);
    messages.append(item);
    item.scrollIntoView({ block: "end" });
  }

  socket.addEventListener("open", () => {
    connection.textContent = "";
    form.querySelector("button").disabled = false;
  });
  socket.addEventListener("close", () => {
    connection.textContent = "disconnected: reload to rejoin";
    form.querySelector("button").disabled = true;
  });
  socket.addEventListener("message", (event) => {
    const data = JSON.parse(event.data);
    if (data.type === "members") {
      count.textContent = String(data.count);
      names.textContent = data.names.join(", ");
    } else if (data.type === "error") {
      addLine("error", null, data.error);
    } else if (typeof data.message === "string") {
      addLine("chat", data.name ?? "", data.message);
    }
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (input.value.trim() && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ message: input.value }));
      input.value = "";
    }
    input.focus();
  });
  form.querySelector("button").disabled = true;
})();
