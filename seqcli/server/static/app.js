// The page of `seqcli serve`: a form built from GET /v1/model, answers from POST /v1/predict,
// a language model's tokens as they stream from POST /v1/generate, attention drawn on a canvas.
"use strict";

const $ = (id) => document.getElementById(id);
let model = null;
let running = null; // the AbortController of the request in flight

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}

function kindOf(schema) {
  const options = schema.anyOf ? schema.anyOf.filter((s) => s.type !== "null") : [schema];
  const main = options[0] || {};
  return { type: main.enum ? "enum" : main.type || "string", enum: main.enum, nullable: !!schema.anyOf, main };
}

function bounds(main) {
  const parts = [];
  if (main.minimum !== undefined) parts.push(">= " + main.minimum);
  if (main.exclusiveMinimum !== undefined) parts.push("> " + main.exclusiveMinimum);
  if (main.maximum !== undefined) parts.push("<= " + main.maximum);
  if (main.exclusiveMaximum !== undefined) parts.push("< " + main.exclusiveMaximum);
  return parts.join(", ");
}

function buildForm() {
  $("title").textContent = "seqcli: " + model.task;
  $("description").textContent = model.description || "";
  const form = model.inputs;
  if (!model.takes_inputs) {
    $("inputs-label").textContent = "Prime: the text the sample continues";
    $("inputs").rows = 3;
  }
  const hints = {
    text: "One input per line.",
    numbers: "One input per line: steps separated by ';', " + (form.dim || "") + " numbers each ('a b; c d').",
    label: "One per line, one of: " + (form.labels || []).join(", "),
    prime: "Leave it empty to start from a new line.",
  };
  $("input-hint").textContent = hints[form.kind] || "";
  const given = model.options[model.takes_inputs ? "inputs" : "prime"];  // the recipe's own, to start from
  if (given && given.default) $("inputs").value = model.takes_inputs ? given.default.join("\n") : given.default;
  const fields = $("options");
  for (const [name, schema] of Object.entries(model.options)) {
    if (name === "inputs" || name === "prime") continue;
    const k = kindOf(schema);
    const label = document.createElement("label");
    label.textContent = name;
    let input;
    if (k.type === "boolean") {
      input = document.createElement("input");
      input.type = "checkbox";
      input.checked = !!schema.default;
    } else if (k.type === "enum") {
      input = document.createElement("select");
      for (const value of k.enum) {
        const option = document.createElement("option");
        option.value = JSON.stringify(value);
        option.textContent = String(value);
        option.selected = value === schema.default;
        input.appendChild(option);
      }
    } else {
      input = document.createElement("input");
      input.type = k.type === "integer" || k.type === "number" ? "number" : "text";
      if (input.type === "number") input.step = "any"; // the server checks the bounds, and says so
      input.value = schema.default === null || schema.default === undefined ? "" : schema.default;
      input.placeholder = k.nullable ? "(none)" : "";
      input.title = bounds(k.main);
    }
    input.id = "option-" + name;
    input.dataset.name = name;
    input.dataset.kind = k.type;
    input.dataset.nullable = k.nullable ? "1" : "";
    label.appendChild(input);
    fields.appendChild(label);
  }
  describe();
}

function describe() {
  const rows = Object.entries(model.metrics || {}).filter(([k]) => k !== "split");
  const about = $("about");
  about.innerHTML = "";
  const text = document.createElement("p");
  const runtime = ["torch", "onnxruntime"].filter((k) => model.versions[k]).map((k) => `${k} ${model.versions[k]}`);
  const exported = model.export ? ` (exported${model.export.quantized ? ", " + model.export.quantized : ""})` : "";
  text.textContent = `checkpoint ${model.checkpoint.path}, step ${model.checkpoint.step}${exported}; ` +
    [`seqcli ${model.versions.seqcli}`, ...runtime].join(", ");
  about.appendChild(text);
  if (rows.length) {
    const table = document.createElement("table");
    for (const [k, v] of rows) {
      const tr = table.insertRow();
      tr.insertCell().textContent = k;
      tr.insertCell().textContent = typeof v === "number" && !Number.isInteger(v) ? v.toFixed(4) : String(v);
    }
    about.appendChild(table);
  }
}

function options() {
  const out = {};
  for (const input of $("options").querySelectorAll("[data-name]")) {
    const name = input.dataset.name;
    if (input.dataset.kind === "boolean") { out[name] = input.checked; continue; }
    if (input.tagName === "SELECT") { out[name] = JSON.parse(input.value); continue; }
    const raw = input.value.trim();
    if (raw === "") { if (input.dataset.nullable) out[name] = null; continue; }
    if (input.dataset.kind === "integer") out[name] = /^-?\d+$/.test(raw) ? parseInt(raw, 10) : raw;
    else if (input.dataset.kind === "number") out[name] = isNaN(Number(raw)) ? raw : Number(raw);
    else out[name] = raw;
  }
  return out;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
}

async function failure(response) {
  let message = `${response.status} ${response.statusText}`;
  try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
  if (response.status === 401) $("key-box").hidden = false;
  showError(message);
}

async function predict(body) {
  if (model.pictures.includes("attention_plot")) body.pictures = ["attention_plot"];
  const response = await fetch("/v1/predict", { method: "POST", headers: headers(), body: JSON.stringify(body), signal: running.signal });
  if (!response.ok) return failure(response);
  const answer = await response.json();
  $("output").textContent = answer.outputs.join("\n");
  $("result").hidden = false;
  if (answer.pictures && answer.pictures.attention_plot) drawAttention(answer.pictures.attention_plot);
}

async function generate(body) {
  body.stream = true;
  const response = await fetch("/v1/generate", { method: "POST", headers: headers(), body: JSON.stringify(body), signal: running.signal });
  if (!response.ok) return failure(response);
  const texts = [];
  $("result").hidden = false;
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = event.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
      if (event.startsWith("event: error")) { showError(JSON.parse(data).error); continue; }
      if (event.startsWith("event: done") || !data) continue;
      JSON.parse(data).pieces.forEach((piece, i) => { texts[i] = (texts[i] || "") + piece; });
      $("output").textContent = texts.join("\n\n");
    }
  }
}

function drawAttention(maps) {
  const box = $("attention");
  for (const map of maps) {
    const cell = 22, left = 70, top = 60;
    const canvas = document.createElement("canvas");
    canvas.width = left + cell * map.input.length + 10;
    canvas.height = top + cell * map.output.length + 10;
    const g = canvas.getContext("2d");
    g.font = "12px ui-monospace, monospace";
    g.fillStyle = "#1d2330";
    map.input.forEach((t, j) => {
      g.save(); g.translate(left + j * cell + cell / 2, top - 6); g.rotate(-Math.PI / 4); g.fillText(t, 0, 0); g.restore();
    });
    map.output.forEach((t, i) => { g.fillText(t, 4, top + i * cell + cell * 0.7); });
    map.weights.forEach((row, i) => row.forEach((w, j) => {
      const shade = Math.round(255 * (1 - w));
      g.fillStyle = `rgb(${shade}, ${shade}, 255)`;
      g.fillRect(left + j * cell, top + i * cell, cell - 1, cell - 1);
    }));
    canvas.title = "attention: each output token (rows) over the input tokens (columns)";
    box.appendChild(canvas);
  }
}

async function submit(event) {
  event.preventDefault();
  $("error").hidden = true;
  $("output").textContent = "";
  $("attention").innerHTML = "";
  const body = options();
  const text = $("inputs").value;
  if (model.takes_inputs) body.inputs = text.split("\n").filter((line) => line.trim() !== "");
  else body.prime = text;
  running = new AbortController();
  $("submit").disabled = true;
  $("stop").hidden = false;
  $("status").textContent = "running...";
  const started = performance.now();
  try {
    await (model.takes_inputs ? predict(body) : generate(body));
    $("status").textContent = `done in ${((performance.now() - started) / 1000).toFixed(2)} s`;
  } catch (e) {
    $("status").textContent = e.name === "AbortError" ? "stopped" : "";
    if (e.name !== "AbortError") showError(String(e));
  } finally {
    $("submit").disabled = false;
    $("stop").hidden = true;
    running = null;
  }
}

async function start() {
  const response = await fetch("/v1/model", { headers: headers() });
  if (!response.ok) { await failure(response); return; }
  model = await response.json();
  buildForm();
  document.body.dataset.ready = "1";
}

$("form").addEventListener("submit", submit);
$("stop").addEventListener("click", () => running && running.abort());
$("api-key").addEventListener("change", () => { if (!model) { $("error").hidden = true; start(); } });
start();
