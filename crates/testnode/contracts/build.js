// Compiles Traffic.sol with the npm `solc` package (solcjs) given as argv[2] (its directory)
// and writes out/<Contract>.bin (creation code, hex).
const fs = require('fs');
const path = require('path');
const solc = require(process.argv[2]);
const src = fs.readFileSync(path.join(__dirname, 'Traffic.sol'), 'utf8');
const input = {
  language: 'Solidity',
  sources: { 'Traffic.sol': { content: src } },
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: 'cancun',
    outputSelection: { '*': { '*': ['evm.bytecode.object'] } },
  },
};
const out = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (out.errors || []).filter((e) => e.severity === 'error');
if (errors.length) {
  console.error(errors.map((e) => e.formattedMessage).join('\n'));
  process.exit(1);
}
fs.mkdirSync(path.join(__dirname, 'out'), { recursive: true });
for (const name of ['Token', 'Probe', 'Delegate']) {
  const bin = out.contracts['Traffic.sol'][name].evm.bytecode.object;
  fs.writeFileSync(path.join(__dirname, 'out', name + '.bin'), bin + '\n');
}
console.log('solc ' + solc.version());
