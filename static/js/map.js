// CloudAlbum: the map of photos (Leaflet + OpenStreetMap tiles, no API key).
"use strict";

// OpenStreetMap's tile layer. The tile usage policy
// (https://operations.osmfoundation.org/policies/tiles/) wants a referrer on
// every tile request, and the attribution linked to the copyright page. The
// pages send `Referrer-Policy: same-origin`, which would strip it from these
// cross-origin requests, so the tile images alone get
// `strict-origin-when-cross-origin`: the page's origin, never its path.
function tiles(element) {
  return L.tileLayer(element.dataset.tiles, {
    maxZoom: 19,
    referrerPolicy: "strict-origin-when-cross-origin",
    attribution: '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors',
  });
}

// The location picker of the upload and edit forms: a click on the map sets
// the latitude and longitude fields; typing in them moves the marker.
(function () {
  const element = document.getElementById("picker");
  if (!element || typeof L === "undefined") return;
  const form = element.closest("form");
  const lat = form.elements.lat;
  const lng = form.elements.lng;
  const map = L.map(element);
  tiles(element).addTo(map);
  let marker = null;
  function place(position, pan) {
    if (marker) marker.setLatLng(position);
    else marker = L.marker(position, { title: "Photo location" }).addTo(map);
    if (pan) map.setView(position, Math.max(map.getZoom() || 0, 12));
  }
  const start = [parseFloat(lat.value), parseFloat(lng.value)];
  if (Number.isFinite(start[0]) && Number.isFinite(start[1])) {
    map.setView(start, 13);
    place(start, false);
  } else {
    map.setView([20, 0], 2);
  }
  map.on("click", function (event) {
    lat.value = event.latlng.lat.toFixed(6);
    lng.value = event.latlng.lng.toFixed(6);
    place(event.latlng, false);
  });
  function typed() {
    const position = [parseFloat(lat.value), parseFloat(lng.value)];
    if (Math.abs(position[0]) <= 90 && Math.abs(position[1]) <= 180) place(position, true);
  }
  lat.addEventListener("change", typed);
  lng.addEventListener("change", typed);
})();

(function () {
  const element = document.getElementById("map");
  const data = document.getElementById("markers");
  if (!element || !data || typeof L === "undefined") return;
  // Text content of a JSON script element: never executed, never HTML.
  const markers = JSON.parse(data.textContent);
  const map = L.map(element);
  tiles(element).addTo(map);
  const bounds = [];
  markers.forEach(function (m) {
    if (typeof m.lat !== "number" || typeof m.lng !== "number") return;
    const popup = document.createElement("div");
    const link = document.createElement("a");
    link.href = m.url;
    const img = document.createElement("img");
    img.src = m.thumbnail_url;
    img.alt = m.title;
    img.width = 150;
    link.appendChild(img);
    const caption = document.createElement("p");
    caption.textContent = m.title;
    popup.appendChild(link);
    popup.appendChild(caption);
    L.marker([m.lat, m.lng], { title: m.title, alt: m.title }).addTo(map).bindPopup(popup);
    bounds.push([m.lat, m.lng]);
  });
  if (bounds.length === 1) map.setView(bounds[0], 13);
  else if (bounds.length > 1) map.fitBounds(bounds, { padding: [30, 30] });
  else map.setView([20, 0], 2);
})();
