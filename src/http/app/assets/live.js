// Pages that follow the sales. Text only: names are set as text, never
// parsed as HTML. Without this script the pages still work (the overview
// reloads itself; the operator's table shows the moment it was made).
"use strict";
(function () {
  // Fills a tbody with rows of cells; every cell but the `textColumn`
  // is a number (right-aligned).
  function fill(body, rows, textColumn) {
    var fragment = document.createDocumentFragment();
    rows.forEach(function (cells) {
      var tr = document.createElement("tr");
      cells.forEach(function (value, i) {
        var td = document.createElement("td");
        td.textContent = String(value);
        if (textColumn.indexOf(i) < 0) { td.className = "num"; }
        tr.appendChild(td);
      });
      fragment.appendChild(tr);
    });
    body.replaceChildren(fragment);
  }

  function counted(element) {
    element.setAttribute("data-updates", String(Number(element.getAttribute("data-updates") || "0") + 1));
  }

  // The operator's live top sellers: a server-sent event stream, at most
  // one update a second.
  var table = document.querySelector("table[data-live-url]");
  if (table && window.EventSource) {
    var stamp = document.getElementById("live-as-of");
    var source = new EventSource(table.getAttribute("data-live-url"));
    source.onmessage = function (event) {
      var update = JSON.parse(event.data);
      fill(table.querySelector("tbody"), update.rows.map(function (row) {
        return [row.rank, row.tenantName, row.productName, row.quantitySold, row.totalSales];
      }), [1, 2]);
      if (stamp) { stamp.textContent = update.asOf; }
      counted(table);
    };
  }

  // A tenant's overview: today's figures asked for again every few seconds.
  var today = document.querySelector("[data-poll-url]");
  if (today && window.fetch) {
    var url = today.getAttribute("data-poll-url");
    var every = 1000 * Number(today.getAttribute("data-poll-seconds") || "5");
    var poll = function () {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (res) {
          // Signed out or idled out: the page itself shows the way back.
          if (res.redirected || res.status === 401) { window.location.reload(); }
          return res.ok && !res.redirected ? res.json() : Promise.reject(res.status);
        })
        .then(function (update) {
          Object.keys(update.figures).forEach(function (name) {
            var cell = today.querySelector("[data-figure='" + name + "']");
            if (cell) { cell.textContent = update.figures[name]; }
          });
          var rows = update.branches.length ? update.branches : [];
          var body = today.querySelector("tbody");
          if (rows.length) { fill(body, rows, [0]); }
          var stamp = document.getElementById("today-as-of");
          if (stamp) { stamp.textContent = update.asOf; }
          counted(today);
        })
        .catch(function () { /* the next poll tries again */ })
        .then(function () { setTimeout(poll, every); });
    };
    setTimeout(poll, every);
  }
}());
