//! Small inspectors for analysis: which opcodes ran and which code addresses executed.

use std::collections::BTreeSet;

use alloy_primitives::Address;
use revm::{
    Inspector,
    interpreter::{
        CallInputs, CallOutcome, CreateInputs, CreateOutcome, Interpreter, interpreter_types::Jumps,
    },
};

/// Records the opcodes a tx executed and every address whose code ran or was called.
#[derive(Debug, Clone)]
pub struct Touches {
    /// Opcodes executed (indexed by opcode byte).
    pub opcodes: [bool; 256],
    /// Call targets and the addresses whose code ran (delegate/callcode included).
    pub addresses: BTreeSet<Address>,
}

impl Default for Touches {
    fn default() -> Self {
        Self {
            opcodes: [false; 256],
            addresses: BTreeSet::new(),
        }
    }
}

impl Touches {
    /// Whether any of `ops` ran.
    pub fn ran_any(&self, ops: &[u8]) -> bool {
        ops.iter().any(|o| self.opcodes[*o as usize])
    }
}

impl<CTX> Inspector<CTX> for Touches {
    fn step(&mut self, interp: &mut Interpreter, _ctx: &mut CTX) {
        self.opcodes[interp.bytecode.opcode() as usize] = true;
    }

    fn call(&mut self, _ctx: &mut CTX, inputs: &mut CallInputs) -> Option<CallOutcome> {
        self.addresses.insert(inputs.target_address);
        self.addresses.insert(inputs.bytecode_address);
        None
    }

    fn create(&mut self, _ctx: &mut CTX, _inputs: &mut CreateInputs) -> Option<CreateOutcome> {
        None
    }
}
