// A small Express application: `node app.js` serves on port 3000;
// `node app.js --check` serves one request on a loopback port, prints the
// answer and exits (what the image test runs, with no network). The
// answer is computed by esbuild's native binary, so it also shows the
// right one for the platform is there.
const express = require("express");
const esbuild = require("esbuild");
const http = require("http");

const app = express();
app.get("/", (req, res) => {
  const out = esbuild.transformSync("let answer: number = 6 * 7", { loader: "ts" });
  res.type("text/plain").send(`hello from stele, esbuild ${esbuild.version}: ${out.code}`);
});

if (process.argv.includes("--check")) {
  const server = app.listen(0, "127.0.0.1", () => {
    http.get({ host: "127.0.0.1", port: server.address().port, path: "/" }, (res) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => {
        console.log(res.statusCode, body.trim());
        server.close();
      });
    });
  });
} else {
  app.listen(3000, "0.0.0.0");
}
