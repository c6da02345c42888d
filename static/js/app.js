// CloudAlbum: progressive enhancements. Every page but upload works without it.
"use strict";

(function () {
  document.documentElement.classList.add("js");
  const form = document.getElementById("upload-form");
  if (!form) return;

  const base = document.body.dataset.base || "";
  const csrf = document.body.dataset.csrf || "";
  const file = document.getElementById("file");
  const preview = document.getElementById("preview");
  const error = document.getElementById("upload-error");
  const button = document.getElementById("upload-button");
  const progress = document.getElementById("upload-progress");

  function fail(message) {
    error.textContent = message;
    error.hidden = false;
    button.disabled = false;
    progress.hidden = true;
  }

  file.addEventListener("change", function () {
    error.hidden = true;
    const chosen = file.files[0];
    if (!chosen) { preview.hidden = true; return; }
    preview.src = URL.createObjectURL(chosen);
    preview.hidden = false;
  });

  // 1. ask the app for a presigned PUT, 2. send the file straight to S3,
  // 3. submit the form so the app verifies it and stores the photo.
  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    const chosen = file.files[0];
    if (!chosen) { fail("Choose a photo first."); return; }
    button.disabled = true;
    error.hidden = true;
    let grant;
    try {
      const response = await fetch(base + "/photos/uploads", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify({ content_type: chosen.type, size: chosen.size }),
      });
      if (!response.ok) {
        const text = await response.text();
        const doc = new DOMParser().parseFromString(text, "text/html");
        const message = doc.querySelector("main p");
        fail(message ? message.textContent : "The upload could not start (" + response.status + ").");
        return;
      }
      grant = await response.json();
    } catch (e) {
      fail("The upload could not start: " + e.message);
      return;
    }
    progress.hidden = false;
    const sent = await new Promise(function (resolve) {
      const xhr = new XMLHttpRequest();
      xhr.open("PUT", grant.url);
      xhr.setRequestHeader("Content-Type", grant.content_type);
      xhr.upload.onprogress = function (e) {
        if (e.lengthComputable) progress.value = Math.round((e.loaded / e.total) * 100);
      };
      xhr.onload = function () { resolve(xhr.status >= 200 && xhr.status < 300); };
      xhr.onerror = function () { resolve(false); };
      xhr.send(chosen);
    });
    if (!sent) { fail("The photo could not be sent to storage; try again."); return; }
    form.elements.id.value = grant.id;
    form.elements.ext.value = grant.ext;
    form.elements.filename.value = chosen.name;
    form.submit();
  });
})();
