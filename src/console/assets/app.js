// The console's entry point: sign-in, the session restored after a reload,
// navigation, and the wiring of buttons, pickers and drag and drop.

import { $, say, errorText } from "./dom.js";
import * as api from "./api.js";
import * as browse from "./browse.js";
import { showOverview } from "./overview.js";
import { uploads, forgetRecords } from "./upload.js";
import { clearFinished, forgetAll } from "./transfers.js";

let session = null;

function showSignIn(text = "") {
  session = null;
  for (const id of ["browse", "overview", "details", "nav", "who"]) $(id).hidden = true;
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = text;
  $("access-key").focus();
}

function showApp(s) {
  session = s;
  $("sign-in").hidden = true;
  $("secret-key").value = "";
  $("who-user").textContent = s.user;
  $("who").hidden = $("nav").hidden = false;
  document.title = `Tessera console · ${s.user}`;
  showBrowse();
}

function showBrowse() {
  $("overview").hidden = true;
  $("browse").hidden = false;
  $("nav-browse").setAttribute("aria-current", "page");
  $("nav-overview").removeAttribute("aria-current");
  browse.show();
}

function showOverviewTab() {
  $("browse").hidden = $("details").hidden = true;
  $("overview").hidden = false;
  $("nav-overview").setAttribute("aria-current", "page");
  $("nav-browse").removeAttribute("aria-current");
  showOverview();
}

// A session that ended (expired, or its secret rotated) leaves nothing of
// its user behind for whoever signs in next in this tab: transfers, saved
// downloads and the local record of unfinished uploads are forgotten, as on
// signing out (the uploads stay resumable through ListMultipartUploads).
api.whenSignedOut(() => {
  forgetAll();
  forgetRecords();
  showSignIn("Your session has ended: sign in again.");
});

$("sign-in-form").addEventListener("submit", async event => {
  event.preventDefault();
  $("sign-in-error").textContent = "";
  try {
    showApp(await api.signIn($("access-key").value.trim(), $("secret-key").value));
  } catch (e) {
    $("secret-key").value = "";
    $("sign-in-error").textContent = e.status === 401 ? "Wrong access key or secret key." : `Could not sign in: ${errorText(e)}`;
  }
});

$("sign-out").addEventListener("click", async () => {
  forgetAll();
  forgetRecords();
  try { await api.signOut(); } catch { /* signed out anyway */ }
  location.hash = "#/";
  showSignIn();
  say("Signed out.");
});

$("nav-browse").addEventListener("click", showBrowse);
$("nav-overview").addEventListener("click", showOverviewTab);
addEventListener("hashchange", () => { if (session) showBrowse(); });

$("create-bucket-form").addEventListener("submit", event => {
  event.preventDefault();
  const name = $("new-bucket").value.trim();
  $("new-bucket").value = "";
  browse.createBucket(name);
});
$("refresh").addEventListener("click", browse.refresh);
$("delete-folder").addEventListener("click", () => browse.deleteFolder());
$("next-page").addEventListener("click", browse.nextPage);
$("prev-page").addEventListener("click", browse.prevPage);
$("close-details").addEventListener("click", browse.closeDetails);
$("make-share").addEventListener("click", browse.makeShareLink);
$("copy-share").addEventListener("click", browse.copyShareLink);
$("clear-finished").addEventListener("click", clearFinished);

for (const id of ["pick-files", "pick-folder"]) {
  $(id).addEventListener("change", event => {
    const files = Array.from(event.target.files);
    event.target.value = "";
    browse.uploadFiles(files.map(file => ({ file, path: file.webkitRelativePath || file.name })));
  });
}

// Drag and drop: files, and folders walked with webkitGetAsEntry.
const zone = $("drop-zone");
zone.addEventListener("dragover", event => { event.preventDefault(); zone.classList.add("dragging"); });
zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
zone.addEventListener("drop", async event => {
  event.preventDefault();
  zone.classList.remove("dragging");
  const items = Array.from(event.dataTransfer.items || []);
  const entries = items.map(i => i.webkitGetAsEntry?.()).filter(Boolean);
  if (!entries.length) {
    browse.uploadFiles(Array.from(event.dataTransfer.files, file => ({ file, path: file.name })));
    return;
  }
  const out = [];
  for (const entry of entries) await walk(entry, "", out);
  browse.uploadFiles(out);
});

async function walk(entry, base, out) {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    out.push({ file, path: base + entry.name });
    return;
  }
  const reader = entry.createReader();
  for (;;) { // readEntries answers at most 100 entries per call
    const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
    if (!batch.length) break;
    for (const child of batch) await walk(child, `${base}${entry.name}/`, out);
  }
}

// Leaving with uploads in flight loses nothing (they resume), but say so.
addEventListener("beforeunload", event => {
  if (uploads.some(u => ["uploading", "checking", "completing"].includes(u.state))) event.preventDefault();
});

(async () => {
  try {
    const s = await api.currentSession();
    if (s) showApp(s); else showSignIn();
  } catch (e) {
    showSignIn(`The console is not reachable: ${errorText(e)}`);
  }
})();
