#!/usr/bin/env node
// Offline syntax check of PowerShell files: parses each file with tree-sitter-powershell
// (its .wasm, through web-tree-sitter, so nothing is compiled) and exits 1 if the tree has
// any ERROR or MISSING node, printing file:line:column for each. Exit 2: usage or I/O error.
// Install once with `npm ci --ignore-scripts` in this directory (see docs/collector.md).
//
// A clean parse is a syntax check only: it says nothing about cmdlets, types or behaviour.

import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import v8 from 'node:v8';

// The grammar's wasm is large: V8's optimising tier spends seconds compiling it, the
// baseline compiler milliseconds, and a parse is fast either way.
v8.setFlagsFromString('--liftoff-only');
const { Language, Parser } = await import('web-tree-sitter');

const require = createRequire(import.meta.url);

// Calls `visit` on every ERROR or MISSING node, depth first, entering only the subtrees
// that contain one (`hasError` covers both kinds).
function visitProblems(node, visit) {
  if (node.isError || node.isMissing) visit(node);
  if (!node.hasError) return;
  for (const child of node.children) {
    if (child !== null && (child.hasError || child.isMissing || child.isError)) {
      visitProblems(child, visit);
    }
  }
}

async function main(files) {
  if (files.length === 0) {
    console.error('usage: check.mjs FILE.ps1...');
    return 2;
  }
  await Parser.init();
  const wasm = require.resolve('tree-sitter-powershell/tree-sitter-powershell.wasm');
  const language = await Language.load(wasm);
  const parser = new Parser();
  parser.setLanguage(language);
  let bad = 0;
  for (const file of files) {
    let text;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      console.error(`${file}: cannot read: ${e.message}`);
      return 2;
    }
    const tree = parser.parse(text);
    if (tree === null) {
      console.error(`${file}: the parser returned no tree`);
      return 2;
    }
    const problems = [];
    visitProblems(tree.rootNode, (node) => {
      if (node.isError || node.isMissing) {
        const p = node.startPosition;
        const what = node.isMissing ? `MISSING ${node.type}` : 'ERROR';
        const snippet = text.slice(node.startIndex, Math.min(node.endIndex, node.startIndex + 60));
        problems.push(`${file}:${p.row + 1}:${p.column + 1}: ${what}: ${JSON.stringify(snippet)}`);
      }
    });
    tree.delete();
    if (problems.length > 0) {
      bad += 1;
      for (const line of problems) console.error(line);
      console.error(`${file}: ${problems.length} syntax problem(s)`);
    } else {
      console.log(`${file}: ok (${text.split('\n').length} lines)`);
    }
  }
  return bad === 0 ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2)).catch((e) => {
  console.error(`check.mjs: ${e.stack || e}`);
  return 2;
});
