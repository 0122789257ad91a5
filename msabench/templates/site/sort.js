// Sortable tables for the msabench leaderboard site (progressive enhancement: without JavaScript every table reads
// as rendered, in rank order). A table with class "sortable" gets a button in each header cell; activating it (click,
// Enter or Space) sorts the rows by that column, first in the column's better direction (th data-order), then the
// other way. Cells sort by their data-sort value (a number; empty = undefined, always last), else by their text.
(function () {
  "use strict";

  function value(cell) {
    var raw = cell.getAttribute("data-sort");
    if (raw === null) return cell.textContent.trim().toLowerCase();
    if (raw === "") return null;
    var number = Number(raw);
    return isNaN(number) ? raw.toLowerCase() : number;
  }

  function compare(a, b) {
    if (a === null || b === null) return a === b ? 0 : a === null ? 1 : -1;
    if (typeof a === "number" && typeof b === "number") return a - b;
    return String(a).localeCompare(String(b));
  }

  function sort(table, column, header, status) {
    var current = header.getAttribute("aria-sort");
    var first = header.getAttribute("data-order") === "descending" ? "descending" : "ascending";
    var next = current === first ? (first === "ascending" ? "descending" : "ascending") : first;
    var sign = next === "ascending" ? 1 : -1;
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell) { cell.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", next);
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (r, s) {
      var a = value(r.cells[column]), b = value(s.cells[column]);
      var order = a === null || b === null ? compare(a, b) : sign * compare(a, b);
      return order || Number(r.getAttribute("data-rank")) - Number(s.getAttribute("data-rank"));
    });
    rows.forEach(function (row) { body.appendChild(row); });
    if (status) status.textContent = "Sorted by " + header.textContent.trim() + ", " + next + ".";
  }

  function enhance(table) {
    var status = document.createElement("p");
    status.className = "sort-status";
    status.setAttribute("role", "status");
    table.parentNode.insertBefore(status, table.nextSibling);
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row, index) {
      row.setAttribute("data-rank", String(index));
    });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header, column) {
      var button = document.createElement("button");
      button.type = "button";
      while (header.firstChild) button.appendChild(header.firstChild);
      button.title = "Sort by this column";
      button.addEventListener("click", function () { sort(table, column, header, status); });
      header.appendChild(button);
    });
    table.classList.add("enhanced");
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), enhance);
  });
})();
