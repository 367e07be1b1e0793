"use strict";
// The polyasr web page: pick a file, send it to /v1/audio/*, show and play the transcript.

const $ = (id) => document.getElementById(id);
const COLORS = ["#fde68a", "#bbf7d0", "#dbeafe", "#fbcfe8", "#ddd6fe", "#fed7aa"];
let picked = null;
let result = null;

function headers() {
  const key = $("api-key").value.trim();
  localStorage.setItem("polyasr-key", key);
  return key ? { Authorization: "Bearer " + key } : {};
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function errorText(status, body) {
  try {
    return JSON.parse(body).error.message;
  } catch (e) {
    return "the server answered " + status;
  }
}

function clock(seconds) {
  const m = Math.floor(seconds / 60);
  const s = (seconds - 60 * m).toFixed(1).padStart(4, "0");
  return m + ":" + s;
}

async function loadModels() {
  const response = await fetch("/v1/models", { headers: headers() });
  const body = await response.text();
  if (!response.ok) {
    showError("cannot list models: " + errorText(response.status, body));
    return;
  }
  showError("");
  const select = $("model");
  select.replaceChildren();
  for (const model of JSON.parse(body).data) {
    select.append(new Option(model.id + " (" + model.family + ")", model.id));
  }
  updateButton();
}

function updateButton() {
  $("go").disabled = !picked || !$("model").value;
}

function pick(file) {
  if (!file) return;
  picked = file;
  $("drop-text").textContent = file.name + " (" + (file.size / 1e6).toFixed(1) + " MB)";
  $("drop").classList.add("picked");
  $("player").src = URL.createObjectURL(file);
  updateButton();
}

function setStatus(text, percent) {
  $("status").hidden = false;
  $("status-text").textContent = text;
  const bar = $("progress");
  if (percent === null) bar.removeAttribute("value");
  else bar.value = percent;
}

function transcribe() {
  showError("");
  const form = new FormData();
  form.append("file", picked);
  form.append("model", $("model").value);
  form.append("response_format", "verbose_json");
  const language = $("language").value.trim();
  if (language) form.append("language", language);
  if ($("diarize").checked) form.append("diarize", "true");
  const route = $("task").value === "translate" ? "translations" : "transcriptions";
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/v1/audio/" + route);
  for (const [name, value] of Object.entries(headers())) xhr.setRequestHeader(name, value);
  const started = performance.now();
  let ticker = null;
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable) {
      const percent = Math.round((100 * e.loaded) / e.total);
      setStatus("Uploading " + percent + " %", percent);
    }
  };
  xhr.upload.onload = () => {
    ticker = setInterval(() => {
      const seconds = ((performance.now() - started) / 1000).toFixed(0);
      setStatus("Transcribing… " + seconds + " s", null);
    }, 500);
    setStatus("Transcribing…", null);
  };
  xhr.onloadend = () => {
    clearInterval(ticker);
    $("go").disabled = false;
    if (xhr.status === 200) {
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      setStatus("Done in " + seconds + " s", 100);
      show(JSON.parse(xhr.responseText));
    } else {
      $("status").hidden = true;
      showError(xhr.status ? errorText(xhr.status, xhr.responseText) : "the connection failed");
    }
  };
  $("go").disabled = true;
  setStatus("Uploading 0 %", 0);
  xhr.send(form);
}

function show(data) {
  result = data;
  const speakers = [];
  const list = $("segments");
  list.replaceChildren();
  for (const segment of data.segments) {
    if (!segment.text.trim()) continue;
    const item = document.createElement("li");
    item.className = "segment";
    item.dataset.start = segment.start;
    item.dataset.end = segment.end;
    const time = document.createElement("span");
    time.className = "time";
    time.textContent = clock(segment.start) + " – " + clock(segment.end);
    const speaker = document.createElement("span");
    speaker.className = "speaker";
    if (segment.speaker) {
      if (!speakers.includes(segment.speaker)) speakers.push(segment.speaker);
      speaker.textContent = segment.speaker;
      speaker.style.background = COLORS[speakers.indexOf(segment.speaker) % COLORS.length];
    }
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = segment.text.trim();
    item.append(time, speaker, text);
    item.addEventListener("click", () => {
      $("player").currentTime = segment.start;
      $("player").play();
    });
    list.append(item);
  }
  const who = speakers.length ? ", " + speakers.length + " speaker(s)" : "";
  $("summary").textContent =
    "language " + (data.language || "?") + ", " + data.duration.toFixed(1) + " s of audio" + who;
  $("result").hidden = false;
}

async function download() {
  const format = $("format").value;
  const response = await fetch("/v1/transcripts/export?format=" + format, {
    method: "POST",
    headers: { ...headers(), "Content-Type": "application/json" },
    body: JSON.stringify(result),
  });
  const body = await response.text();
  if (!response.ok) {
    showError(errorText(response.status, body));
    return;
  }
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([body], { type: "text/plain" }));
  link.download = (picked.name.replace(/\.[^.]*$/, "") || "transcript") + "." + format;
  link.click();
}

function followPlayback() {
  const now = $("player").currentTime;
  for (const item of $("segments").children) {
    const on = now >= Number(item.dataset.start) && now < Number(item.dataset.end);
    item.classList.toggle("playing", on);
  }
}

$("api-key").value = localStorage.getItem("polyasr-key") || "";
$("api-key").addEventListener("change", loadModels);
$("file").addEventListener("change", (e) => pick(e.target.files[0]));
$("model").addEventListener("change", updateButton);
$("go").addEventListener("click", transcribe);
$("download").addEventListener("click", download);
$("player").addEventListener("timeupdate", followPlayback);
const drop = $("drop");
drop.addEventListener("dragover", (e) => {
  e.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  pick(e.dataTransfer.files[0]);
});
loadModels();
