// Review station, keyboard only: the entry box has the focus (Enter sends the form); Esc skips the item.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var box = document.getElementById("number");
  if (box) {
    box.value = "";
    box.focus();
  }
});
document.addEventListener("keydown", function (event) {
  var skip = document.getElementById("skip");
  if (event.key === "Escape" && skip) {
    event.preventDefault();
    skip.submit();
  }
});
