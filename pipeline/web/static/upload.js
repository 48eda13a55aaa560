// Scan upload: send the files with a progress bar, then follow the intake's progress (polled JSON).
"use strict";
(function () {
  function send(form) {
    var area = document.getElementById("upload-progress");
    var bar = document.getElementById("upload-bar");
    var label = document.getElementById("upload-label");
    var button = form.querySelector("button[type=submit]");
    var request = new XMLHttpRequest();
    request.open("POST", form.action);
    request.setRequestHeader("Accept", "application/json");
    request.setRequestHeader("X-CSRF-Token", form.querySelector("[name=csrf_token]").value);
    area.hidden = false;
    button.disabled = true;
    label.textContent = "送信中…";
    request.upload.onprogress = function (event) {
      if (event.lengthComputable) {
        bar.value = Math.round(100 * event.loaded / event.total);
        label.textContent = "送信中 " + bar.value + "%";
      }
    };
    request.onload = function () {
      var answer = {};
      try { answer = JSON.parse(request.responseText); } catch (e) { answer = {}; }
      if (request.status === 202 && answer.page) {
        label.textContent = "送信しました。読み取りを始めます…";
        window.location.assign(answer.page);
      } else {
        label.textContent = answer.error || "送信できませんでした（" + request.status + "）";
        button.disabled = false;
      }
    };
    request.onerror = function () {
      label.textContent = "送信できませんでした（接続エラー）";
      button.disabled = false;
    };
    request.send(new FormData(form));
  }

  function follow(job) {
    var states = {queued: "待機中", running: "読み取り中", done: "完了", failed: "失敗"};
    function poll() {
      var request = new XMLHttpRequest();
      request.open("GET", job.dataset.status);
      request.setRequestHeader("Accept", "application/json");
      request.onload = function () {
        if (request.status !== 200) { return; }
        var status = JSON.parse(request.responseText);
        document.getElementById("job-bar").value = status.percent;
        document.getElementById("job-state").textContent = states[status.state] || status.state;
        document.getElementById("job-count").innerHTML = "";
        var strong = document.createElement("strong");
        strong.textContent = status.done;
        document.getElementById("job-count").append(strong, " / " + status.total + " ページ");
        if (status.state === "done" || status.state === "failed") {
          window.location.reload();        // the server shows the result
        } else {
          window.setTimeout(poll, 700);
        }
      };
      request.send();
    }
    poll();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("upload-form");
    if (form && window.FormData) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        send(form);
      });
    }
    var job = document.getElementById("job");
    if (job && (job.dataset.state === "queued" || job.dataset.state === "running")) {
      follow(job);
    }
  });
})();
