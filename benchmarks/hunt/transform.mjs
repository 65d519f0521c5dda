// Build the disguised copies of the benchmark (issue 5) from the sampled private files.
//
//   node transform.mjs rename  JOBS.json   (b1) every local renamed v1.. via the TypeScript
//                                           LanguageService, then prettier in another style
//   node transform.mjs mangle  JOBS.json   (b2) esbuild TS->JS, terser mangle (compress off),
//                                           prettier
//   node transform.mjs strings JOBS.json   string literals of each file (for the port set)
//
// JOBS.json is a list of {src, dst}; results are written to dst (strings: a JSON list of
// strings). A summary goes to stdout as JSON. The benchmark runs this; the product never does.
import fs from "node:fs";
import path from "node:path";
import ts from "typescript";
import * as esbuild from "esbuild";
import { minify } from "terser";
import * as prettier from "prettier";

const STYLE_B1 = { useTabs: true, semi: false, singleQuote: true, printWidth: 60 };

function isExported(node) {
  const mods = ts.canHaveModifiers(node) ? ts.getModifiers(node) ?? [] : [];
  return mods.some((m) => m.kind === ts.SyntaxKind.ExportKeyword);
}

function bindingNames(name, out) {
  if (ts.isIdentifier(name)) out.push(name);
  else for (const el of name.elements) if (!ts.isOmittedExpression(el)) bindingNames(el.name, out);
}

// Declarations to rename: parameters, variables (except top-level exported ones), and
// function declarations that are not exported.
function localDeclarations(sf) {
  const names = [];
  const visit = (node) => {
    if (ts.isParameter(node)) bindingNames(node.name, names);
    else if (ts.isVariableDeclaration(node)) {
      const stmt = node.parent?.parent;
      const exported = stmt && ts.isVariableStatement(stmt) && isExported(stmt);
      if (!exported) bindingNames(node.name, names);
    } else if (ts.isFunctionDeclaration(node) && node.name && !isExported(node)) {
      names.push(node.name);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return names.filter((n) => n.text !== "this");
}

function renameLocals(file, text) {
  const files = new Map([[file, text]]);
  const host = {
    getScriptFileNames: () => [file],
    getScriptVersion: () => "1",
    getScriptSnapshot: (f) => (files.has(f) ? ts.ScriptSnapshot.fromString(files.get(f)) : undefined),
    getCurrentDirectory: () => "/",
    getCompilationSettings: () => ({ noLib: true, noResolve: true, allowJs: true, jsx: ts.JsxEmit.Preserve }),
    getDefaultLibFileName: () => "lib.d.ts",
    fileExists: (f) => files.has(f),
    readFile: (f) => files.get(f),
  };
  const service = ts.createLanguageService(host, ts.createDocumentRegistry());
  const sf = service.getProgram().getSourceFile(file);
  const edits = new Map(); // start -> {end, text}
  let counter = 0;
  for (const id of localDeclarations(sf)) {
    let fresh;
    do fresh = `v${++counter}`; while (new RegExp(`\\b${fresh}\\b`).test(text));
    const locs = service.findRenameLocations(file, id.getStart(sf), false, false,
      { providePrefixAndSuffixTextForRename: true }) ?? [];
    for (const loc of locs) {
      if (loc.fileName !== file || edits.has(loc.textSpan.start)) continue;
      edits.set(loc.textSpan.start, {
        end: loc.textSpan.start + loc.textSpan.length,
        text: (loc.prefixText ?? "") + fresh + (loc.suffixText ?? ""),
      });
    }
  }
  let out = text;
  for (const start of [...edits.keys()].sort((a, b) => b - a)) {
    const e = edits.get(start);
    out = out.slice(0, start) + e.text + out.slice(e.end);
  }
  return { text: out, renames: counter };
}

function stringLiterals(file, text) {
  const kind = file.endsWith(".tsx") ? ts.ScriptKind.TSX : file.endsWith(".js") ? ts.ScriptKind.JS : ts.ScriptKind.TS;
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, kind);
  const out = [];
  const visit = (node) => {
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) out.push(node.text);
    else if (ts.isTemplateExpression(node)) {
      out.push([node.head.text, ...node.templateSpans.map((s) => s.literal.text)].join("{value}"));
    } else if (ts.isJsxText(node) && node.text.trim()) out.push(node.text.trim());
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

async function mangle(file, text) {
  const loader = file.endsWith(".tsx") ? "tsx" : file.endsWith(".ts") ? "ts" : "jsx";
  const js = (await esbuild.transform(text, { loader, format: "esm", target: "es2022" })).code;
  const min = await minify(js, { compress: false, mangle: true, module: true });
  return prettier.format(min.code, { parser: "babel" });
}

async function main() {
  const [mode, jobsFile] = process.argv.slice(2);
  const jobs = JSON.parse(fs.readFileSync(jobsFile, "utf8"));
  const summary = { mode, files: 0, failed: [], renames: 0 };
  for (const { src, dst } of jobs) {
    const text = fs.readFileSync(src, "utf8");
    fs.mkdirSync(path.dirname(dst), { recursive: true });
    try {
      if (mode === "rename") {
        const renamed = renameLocals(src.endsWith(".js") ? "/f.jsx" : "/f" + path.extname(src), text);
        summary.renames += renamed.renames;
        let pretty = renamed.text;
        try {
          pretty = await prettier.format(renamed.text, { ...STYLE_B1, filepath: dst });
        } catch (err) {
          summary.failed.push(`${src}: prettier: ${String(err).slice(0, 120)}`);
        }
        fs.writeFileSync(dst, pretty);
      } else if (mode === "mangle") {
        fs.writeFileSync(dst, await mangle(src, text));
      } else if (mode === "strings") {
        fs.writeFileSync(dst, JSON.stringify(stringLiterals(src, text)));
      } else throw new Error(`unknown mode ${mode}`);
      summary.files++;
    } catch (err) {
      summary.failed.push(`${src}: ${String(err).slice(0, 160)}`);
    }
  }
  process.stdout.write(JSON.stringify(summary) + "\n");
}

await main();
