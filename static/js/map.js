// CloudAlbum: the map of photos (Leaflet + OpenStreetMap tiles, no API key).
"use strict";

(function () {
  const element = document.getElementById("map");
  const data = document.getElementById("markers");
  if (!element || !data || typeof L === "undefined") return;
  // Text content of a JSON script element: never executed, never HTML.
  const markers = JSON.parse(data.textContent);
  const map = L.map(element);
  L.tileLayer(element.dataset.tiles, {
    maxZoom: 19,
    attribution: "&copy; OpenStreetMap contributors",
  }).addTo(map);
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
