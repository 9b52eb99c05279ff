// fleetlog's own browser code: charts and maps from the JSON specs the server embeds, the
// geofence editor's map clicks, live car summaries over SSE, and the suspend/resume buttons.
// Maps are plotly scatter plots in Web Mercator coordinates, with map tiles as background
// images when a tile URL is configured: without network the tiles are simply missing and the
// map still shows the route, points and circles.
(function () {
  "use strict";

  function meta(name) {
    var el = document.querySelector('meta[name="' + name + '"]');
    return el ? el.getAttribute("content") : "";
  }
  var base = meta("fleetlog-base");
  var csrf = meta("csrf-token");
  var tileUrl = meta("fleetlog-tiles");
  var prefs = JSON.parse(meta("fleetlog-prefs") || "{}");
  var dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  var plotConfig = { responsive: true, displaylogo: false };

  function specOf(el, attr) {
    var node = document.getElementById(el.getAttribute(attr));
    return node ? JSON.parse(node.textContent) : null;
  }

  function baseLayout() {
    return {
      margin: { l: 50, r: 50, t: 10, b: 40 },
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      font: { color: dark ? "#e6e8ee" : "#1d1f24", size: 12 },
      legend: { orientation: "h", y: -0.2 },
      xaxis: { gridcolor: dark ? "#2d313b" : "#e1e3ea" },
      yaxis: { gridcolor: dark ? "#2d313b" : "#e1e3ea" },
    };
  }

  function merge(a, b) {
    var out = Object.assign({}, a);
    Object.keys(b || {}).forEach(function (k) {
      var v = b[k];
      out[k] = v && typeof v === "object" && !Array.isArray(v) && typeof a[k] === "object"
        ? merge(a[k], v) : v;
    });
    return out;
  }

  // --- charts -------------------------------------------------------------------------
  if (window.Plotly) {
    document.querySelectorAll(".chart[data-spec]").forEach(function (el) {
      var spec = specOf(el, "data-spec");
      if (spec) window.Plotly.newPlot(el, spec.data, merge(baseLayout(), spec.layout), plotConfig);
    });
  }

  // --- maps ---------------------------------------------------------------------------
  var EARTH_M = 40075016.686;
  function mx(lng) { return (lng + 180) / 360; }
  function my(lat) {
    var s = Math.sin((Math.max(-85, Math.min(85, lat)) * Math.PI) / 180);
    return -(0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)); // north up
  }
  function lngOf(x) { return x * 360 - 180; }
  function latOf(y) { return (Math.atan(Math.sinh(Math.PI * (1 + 2 * y))) * 180) / Math.PI; }

  function circle(c) {
    var xs = [], ys = [], r = c.radius_m, cos = Math.cos((c.lat * Math.PI) / 180);
    for (var i = 0; i <= 48; i++) {
      var a = (i / 48) * 2 * Math.PI;
      xs.push(mx(c.lng + ((r / 111320) * Math.cos(a)) / cos));
      ys.push(my(c.lat + (r / 111320) * Math.sin(a)));
    }
    return { type: "scatter", mode: "lines", x: xs, y: ys, fill: "toself", name: c.name,
             hoverinfo: "name", line: { color: c.color || "#1f9d55", width: 2 },
             fillcolor: "rgba(31,157,85,0.15)" };
  }

  function tileImages(gd) {
    if (!tileUrl) return [];
    var xr = gd._fullLayout.xaxis.range, yr = gd._fullLayout.yaxis.range;
    var span = Math.abs(xr[1] - xr[0]) || 1e-6;
    var z = Math.max(0, Math.min(19, Math.round(Math.log2(gd.clientWidth / 256 / span))));
    var n = Math.pow(2, z), images = [];
    var tx0 = Math.max(0, Math.floor(Math.min(xr[0], xr[1]) * n));
    var tx1 = Math.min(n - 1, Math.floor(Math.max(xr[0], xr[1]) * n));
    var ty0 = Math.max(0, Math.floor(-Math.max(yr[0], yr[1]) * n));
    var ty1 = Math.min(n - 1, Math.floor(-Math.min(yr[0], yr[1]) * n));
    if ((tx1 - tx0 + 1) * (ty1 - ty0 + 1) > 120) return [];
    for (var tx = tx0; tx <= tx1; tx++) {
      for (var ty = ty0; ty <= ty1; ty++) {
        images.push({
          source: tileUrl.replace("{z}", z).replace("{x}", tx).replace("{y}", ty),
          xref: "x", yref: "y", x: tx / n, y: -ty / n, sizex: 1 / n, sizey: 1 / n,
          xanchor: "left", yanchor: "top", sizing: "stretch", layer: "below",
        });
      }
    }
    return images;
  }

  function drawMap(el, spec) {
    var traces = [], xs = [], ys = [];
    (spec.traces || []).forEach(function (t) {
      var x = t.lng.map(mx), y = t.lat.map(my);
      xs = xs.concat(x); ys = ys.concat(y);
      traces.push({ type: "scatter", mode: t.mode || "lines", x: x, y: y, name: t.name,
                    hoverinfo: "name", line: { color: "#2f6fdd", width: 3 },
                    marker: { color: "#2f6fdd", size: 6, opacity: 0.6 } });
    });
    (spec.circles || []).forEach(function (c) {
      traces.push(circle(c)); xs.push(mx(c.lng)); ys.push(my(c.lat));
    });
    (spec.markers || []).forEach(function (m) {
      traces.push({ type: "scatter", mode: "markers+text", x: [mx(m.lng)], y: [my(m.lat)],
                    text: [m.name], textposition: "top center", name: m.name,
                    marker: { size: 12, color: "#c0392b" } });
      xs.push(mx(m.lng)); ys.push(my(m.lat));
    });
    var edit = null;
    if (spec.edit) {
      edit = document.getElementById("fence-lat") && {
        lat: document.getElementById("fence-lat"), lng: document.getElementById("fence-lng"),
        radius: document.getElementById("fence-radius"),
      };
      var c0 = { lat: +edit.lat.value, lng: +edit.lng.value, radius_m: +edit.radius.value,
                 name: "this geofence", color: "#c0392b" };
      traces.push(circle(c0));
      // Frame the fence being edited, not every other fence as well.
      xs = [mx(c0.lng)]; ys = [my(c0.lat)];
      spec.zoom = spec.zoom || 16;
    }
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    var y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
    if (!xs.length) { x0 = x1 = 0.5; y0 = y1 = -0.5; }
    var minSpan = Math.pow(2, -(spec.zoom || 15)) * ((el.clientWidth || 600) / 256);
    var pad = Math.max((x1 - x0) * 0.1, (y1 - y0) * 0.1, minSpan / 2);
    var layout = merge(baseLayout(), {
      margin: { l: 0, r: 0, t: 0, b: 0 }, showlegend: false, dragmode: "pan",
      xaxis: { range: [x0 - pad, x1 + pad], visible: false },
      yaxis: { range: [y0 - pad, y1 + pad], visible: false, scaleanchor: "x" },
      annotations: tileUrl ? [{ text: "© OpenStreetMap contributors", showarrow: false,
        xref: "paper", yref: "paper", x: 1, y: 0, xanchor: "right", yanchor: "bottom",
        font: { size: 9 }, bgcolor: "rgba(255,255,255,0.7)" }] : [],
    });
    window.Plotly.newPlot(el, traces, layout, { responsive: true, displaylogo: false,
                                                scrollZoom: true }).then(function () {
      if (tileUrl) window.Plotly.relayout(el, { images: tileImages(el) });
      el.on("plotly_relayout", function (ev) {
        if (!tileUrl || Object.keys(ev).every(function (k) { return k.indexOf("images") === 0; })) return;
        window.Plotly.relayout(el, { images: tileImages(el) });
      });
      if (edit) enableEditing(el, edit, traces.length - 1);
    });
  }

  // A click (no drag) on the map moves the geofence's centre there.
  function enableEditing(el, edit, index) {
    var down = null;
    function redraw() {
      var c = circle({ lat: +edit.lat.value, lng: +edit.lng.value, radius_m: +edit.radius.value,
                       name: "this geofence", color: "#c0392b" });
      window.Plotly.restyle(el, { x: [c.x], y: [c.y] }, [index]);
    }
    el.addEventListener("mousedown", function (e) { down = [e.clientX, e.clientY]; }, true);
    window.addEventListener("mouseup", function (e) {
      if (!down) return;
      var moved = Math.abs(e.clientX - down[0]) + Math.abs(e.clientY - down[1]);
      down = null;
      var area = el.querySelector(".nsewdrag");
      if (moved > 4 || !area) return;
      var box = area.getBoundingClientRect();
      if (e.clientX < box.left || e.clientX > box.right || e.clientY < box.top || e.clientY > box.bottom) return;
      var fl = el._fullLayout;
      var x = fl.xaxis.p2d(e.clientX - box.left), y = fl.yaxis.p2d(e.clientY - box.top);
      edit.lat.value = latOf(y).toFixed(6);
      edit.lng.value = lngOf(x).toFixed(6);
      redraw();
    });
    [edit.lat, edit.lng, edit.radius].forEach(function (input) {
      input.addEventListener("change", redraw);
    });
  }

  if (window.Plotly) {
    document.querySelectorAll("[data-map]").forEach(function (el) {
      var spec = specOf(el, "data-map");
      if (spec) drawMap(el, spec);
    });
  }

  // --- filters: quick ranges ----------------------------------------------------------
  document.querySelectorAll("a.preset").forEach(function (a) {
    a.addEventListener("click", function (e) {
      e.preventDefault();
      var form = a.closest("form");
      var days = a.getAttribute("data-days");
      var from = "";
      if (days) {
        var d = new Date(Date.now() - (Number(days) - 1) * 86400000);
        from = d.toISOString().slice(0, 10);
      }
      form.querySelector('[name="from"]').value = from;
      form.querySelector('[name="to"]').value = "";
      form.submit();
    });
  });

  // --- cars: times, live updates, suspend/resume --------------------------------------
  var timeFormat = new Intl.DateTimeFormat(undefined, {
    timeZone: prefs.tz || "UTC", dateStyle: "medium", timeStyle: "short",
  });
  function showTimes(root) {
    root.querySelectorAll("[data-time]").forEach(function (el) {
      var iso = el.getAttribute("data-time");
      if (iso) el.textContent = timeFormat.format(new Date(iso));
    });
  }
  showTimes(document);

  function display(el, value) {
    var unit = el.getAttribute("data-unit"), bool = el.getAttribute("data-bool");
    if (value === null || value === undefined) return "–";
    if (bool) return bool.split(",")[value ? 0 : 1];
    if (unit === "dist") {
      var mi = prefs.length === "mi";
      return (mi ? value / 1.609344 : value).toFixed(0) + (mi ? " mi" : " km");
    }
    if (unit === "temp") {
      var f = prefs.temperature === "F";
      return (f ? value * 9 / 5 + 32 : value).toFixed(1) + (f ? " °F" : " °C");
    }
    return String(value);
  }

  var cars = document.querySelector('.cars[data-live="on"]');
  if (cars && window.EventSource) {
    var source = new EventSource(base + "/api/events");
    source.addEventListener("summary", function (msg) {
      var data = JSON.parse(msg.data);
      var card = cars.querySelector('article[data-car="' + data.car_id + '"]');
      if (!card) return;
      card.querySelectorAll("[data-field]").forEach(function (el) {
        var key = el.getAttribute("data-field");
        if (!(key in data.summary)) return;
        if (key === "since") { el.setAttribute("data-time", data.summary.since || ""); return; }
        el.textContent = display(el, data.summary[key]);
        if (key === "state") el.className = "state state-" + data.summary.state;
      });
      showTimes(card);
    });
  }

  document.querySelectorAll("button.logging").forEach(function (button) {
    button.addEventListener("click", function () {
      var car = button.getAttribute("data-car"), action = button.getAttribute("data-action");
      var out = button.parentElement.querySelector(".logging-result");
      out.textContent = "…";
      fetch(base + "/api/car/" + car + "/logging/" + action, {
        method: "PUT", headers: { "X-CSRF-Token": csrf }, credentials: "same-origin",
      }).then(function (r) {
        if (r.status === 204) {
          out.className = "logging-result done";
          out.textContent = action === "suspend" ? "Logging suspended." : "Logging resumed.";
          return null;
        }
        return r.json().then(function (body) {
          out.className = "logging-result refused";
          out.textContent = "Refused: " + (body.error || r.status);
        });
      }).catch(function (err) {
        out.className = "logging-result refused";
        out.textContent = "Failed: " + err;
      });
    });
  });
  // Confirmation for destructive buttons (the server still needs the form's fields).
  document.querySelectorAll("[data-confirm]").forEach(function (el) {
    el.addEventListener("click", function (event) {
      if (!window.confirm(el.getAttribute("data-confirm"))) event.preventDefault();
    });
  });

  // Tariff editor: add and remove window rows (without JS, the spare row adds one and
  // emptying a row removes it).
  var windows = document.querySelector("#tariff-windows tbody");
  var rowTemplate = document.getElementById("tariff-window-template");
  if (windows && rowTemplate) {
    var renumber = function () {
      windows.querySelectorAll("tr").forEach(function (tr, i) {
        tr.querySelector(".n").textContent = String(i + 1);
      });
    };
    windows.addEventListener("click", function (event) {
      var target = event.target;
      if (target instanceof Element && target.classList.contains("tariff-remove")) {
        target.closest("tr").remove();
        renumber();
      }
    });
    document.getElementById("tariff-add").addEventListener("click", function () {
      windows.appendChild(rowTemplate.content.cloneNode(true));
      renumber();
      var rows = windows.querySelectorAll("tr");
      rows[rows.length - 1].querySelector("input[name=w_days]").focus();
    });
  }
})();
