// Live top sellers: the table with data-live-url is refilled from the
// server's event stream (at most one update a second). Text only: names
// are set as text, never parsed as HTML.
"use strict";
(function () {
  var table = document.querySelector("table[data-live-url]");
  if (!table || !window.EventSource) { return; }
  var body = table.querySelector("tbody");
  var stamp = document.getElementById("live-as-of");
  var source = new EventSource(table.getAttribute("data-live-url"));
  source.onmessage = function (event) {
    var update = JSON.parse(event.data);
    var rows = document.createDocumentFragment();
    update.rows.forEach(function (row) {
      var tr = document.createElement("tr");
      [row.rank, row.tenantID, row.productName, row.quantitySold, row.totalSales].forEach(function (value, i) {
        var td = document.createElement("td");
        td.textContent = String(value);
        if (i !== 2) { td.className = "num"; }
        tr.appendChild(td);
      });
      rows.appendChild(tr);
    });
    body.replaceChildren(rows);
    if (stamp) { stamp.textContent = update.asOf; }
    table.setAttribute("data-updates", String(Number(table.getAttribute("data-updates") || "0") + 1));
  };
}());
