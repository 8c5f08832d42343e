//! Small inspectors for analysis: which opcodes ran and which code addresses executed.

use std::collections::BTreeSet;

use alloy_primitives::Address;
use revm::{
    Inspector,
    interpreter::{
        CallInputs, CallOutcome, CreateInputs, CreateOutcome, Interpreter,
        interpreter_types::{Jumps, MemoryTr},
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

/// One executed instruction, compactly (traces of large txs stay small).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Step {
    /// Program counter.
    pub pc: u32,
    /// Opcode byte.
    pub op: u8,
    /// Call depth (1 = the tx's own frame).
    pub depth: u16,
    /// Index of the call frame in [`StepTrace::frames`].
    pub frame: u32,
    /// Gas left before the instruction.
    pub gas: u64,
    /// Gas the instruction charged (for calls and creates: including the gas passed on).
    pub cost: u64,
    /// Low 64 bits of the stack top after the instruction (0 if empty).
    pub out: u64,
}

/// A call frame of a trace.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Frame {
    /// Depth (1 = the tx's own frame).
    pub depth: u16,
    /// `CALL`, `STATICCALL`, `DELEGATECALL`, `CALLCODE`, `CREATE`, `CREATE2`.
    pub kind: String,
    /// Caller.
    pub from: Address,
    /// Target (the created address for creates, once known).
    pub to: Option<Address>,
    /// Address whose code runs (differs from `to` for delegate calls).
    pub code: Option<Address>,
    /// 4-byte selector of the input.
    pub selector: Option<[u8; 4]>,
    /// Gas given to the frame.
    pub gas_limit: u64,
    /// Gas the frame used.
    pub gas_used: u64,
    /// Whether it succeeded.
    pub success: bool,
    /// `Revert`, `OutOfGas`, ... when it did not.
    pub result: String,
    /// Index of its first step.
    pub first_step: usize,
    /// Parent frame.
    pub parent: Option<u32>,
}

/// Records every step compactly and the call tree; a step cap protects memory on huge txs.
#[derive(Debug, Clone, Default)]
pub struct StepTrace {
    /// Steps in order (up to `max_steps`).
    pub steps: Vec<Step>,
    /// Call frames in the order they started.
    pub frames: Vec<Frame>,
    /// Steps not recorded past the cap.
    pub dropped: u64,
    /// Step cap (0 = no cap).
    pub max_steps: usize,
    open: Vec<u32>,
    pending: Option<(usize, u64)>,
}

impl StepTrace {
    /// A recorder keeping at most `max_steps` steps.
    pub fn new(max_steps: usize) -> Self {
        Self {
            max_steps,
            ..Default::default()
        }
    }

    fn push_frame(&mut self, f: Frame) {
        self.open.push(self.frames.len() as u32);
        self.frames.push(f);
    }

    fn close_frame(&mut self, used: u64, success: bool, result: String, created: Option<Address>) {
        if let Some(i) = self.open.pop() {
            let f = &mut self.frames[i as usize];
            f.gas_used = used;
            f.success = success;
            f.result = result;
            if created.is_some() {
                f.to = created;
                f.code = created;
            }
        }
    }
}

fn selector(b: &[u8]) -> Option<[u8; 4]> {
    b.get(..4).map(|s| <[u8; 4]>::try_from(s).expect("4 bytes"))
}

impl<CTX: revm::context_interface::ContextTr> Inspector<CTX> for StepTrace {
    fn step(&mut self, interp: &mut Interpreter, _ctx: &mut CTX) {
        if self.max_steps != 0 && self.steps.len() >= self.max_steps {
            self.dropped += 1;
            self.pending = None;
            return;
        }
        let gas = interp.gas.remaining();
        self.pending = Some((self.steps.len(), gas));
        self.steps.push(Step {
            pc: interp.bytecode.pc() as u32,
            op: interp.bytecode.opcode(),
            depth: self.open.len() as u16,
            frame: self.open.last().copied().unwrap_or(0),
            gas,
            cost: 0,
            out: 0,
        });
    }

    fn step_end(&mut self, interp: &mut Interpreter, _ctx: &mut CTX) {
        if let Some((i, before)) = self.pending.take() {
            let s = &mut self.steps[i];
            s.cost = before.saturating_sub(interp.gas.remaining());
            s.out = interp
                .stack
                .data()
                .last()
                .map(|v| v.as_limbs()[0])
                .unwrap_or(0);
        }
    }

    fn call(&mut self, ctx: &mut CTX, inputs: &mut CallInputs) -> Option<CallOutcome> {
        let input = inputs.input.bytes(ctx);
        self.push_frame(Frame {
            depth: self.open.len() as u16 + 1,
            kind: format!("{:?}", inputs.scheme).to_ascii_uppercase(),
            from: inputs.caller,
            to: Some(inputs.target_address),
            code: Some(inputs.bytecode_address),
            selector: selector(&input),
            gas_limit: inputs.gas_limit,
            gas_used: 0,
            success: false,
            result: String::new(),
            first_step: self.steps.len(),
            parent: self.open.last().copied(),
        });
        None
    }

    fn call_end(&mut self, _ctx: &mut CTX, inputs: &CallInputs, outcome: &mut CallOutcome) {
        let r = &outcome.result;
        let used = inputs.gas_limit.saturating_sub(r.gas.remaining());
        self.close_frame(used, r.result.is_ok(), format!("{:?}", r.result), None);
    }

    fn create(&mut self, _ctx: &mut CTX, inputs: &mut CreateInputs) -> Option<CreateOutcome> {
        self.push_frame(Frame {
            depth: self.open.len() as u16 + 1,
            kind: match inputs.scheme() {
                revm::context_interface::CreateScheme::Create => "CREATE".into(),
                _ => "CREATE2".into(),
            },
            from: inputs.caller(),
            to: None,
            code: None,
            selector: None,
            gas_limit: inputs.gas_limit(),
            gas_used: 0,
            success: false,
            result: String::new(),
            first_step: self.steps.len(),
            parent: self.open.last().copied(),
        });
        None
    }

    fn create_end(&mut self, _ctx: &mut CTX, inputs: &CreateInputs, outcome: &mut CreateOutcome) {
        let r = &outcome.result;
        let used = inputs.gas_limit().saturating_sub(r.gas.remaining());
        self.close_frame(
            used,
            r.result.is_ok(),
            format!("{:?}", r.result),
            outcome.address,
        );
    }
}

/// Full detail of the steps in `[from, to)`: stack, memory size, storage touched.
#[derive(Debug, Clone, Default)]
pub struct StepWindow {
    /// First step index recorded.
    pub from: usize,
    /// One past the last.
    pub to: usize,
    /// The recorded steps.
    pub steps: Vec<RichStep>,
    index: usize,
    pending: Option<usize>,
}

/// A step with its context.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RichStep {
    /// Step index in the trace.
    pub index: usize,
    /// Program counter.
    pub pc: u32,
    /// Opcode byte.
    pub op: u8,
    /// Opcode name.
    pub name: String,
    /// Depth.
    pub depth: u16,
    /// Gas left before.
    pub gas: u64,
    /// Gas charged.
    pub cost: u64,
    /// Top of the stack before the instruction (top first, at most 4).
    pub stack: Vec<alloy_primitives::U256>,
    /// Top of the stack after.
    pub stack_after: Option<alloy_primitives::U256>,
    /// Memory size in bytes before.
    pub memory: usize,
    /// Storage slot read (SLOAD/TLOAD) or written (SSTORE/TSTORE): (slot, value).
    pub storage: Option<(alloy_primitives::U256, alloy_primitives::U256)>,
}

impl StepWindow {
    /// Records steps `[from, to)`.
    pub fn new(from: usize, to: usize) -> Self {
        Self {
            from,
            to,
            ..Default::default()
        }
    }
}

impl<CTX> Inspector<CTX> for StepWindow {
    fn step(&mut self, interp: &mut Interpreter, _ctx: &mut CTX) {
        let i = self.index;
        self.index += 1;
        if i < self.from || i >= self.to {
            return;
        }
        let data = interp.stack.data();
        let stack: Vec<_> = data.iter().rev().take(4).copied().collect();
        let op = interp.bytecode.opcode();
        let storage = match op {
            0x55 | 0x5d => Some((
                stack.first().copied().unwrap_or_default(),
                stack.get(1).copied().unwrap_or_default(),
            )),
            _ => None,
        };
        self.pending = Some(self.steps.len());
        self.steps.push(RichStep {
            index: i,
            pc: interp.bytecode.pc() as u32,
            op,
            name: revm::bytecode::opcode::OpCode::new(op)
                .map_or_else(|| format!("0x{op:02x}"), |o| o.as_str().to_string()),
            depth: 0,
            gas: interp.gas.remaining(),
            cost: 0,
            stack,
            stack_after: None,
            memory: interp.memory.size(),
            storage,
        });
    }

    fn step_end(&mut self, interp: &mut Interpreter, _ctx: &mut CTX) {
        if let Some(k) = self.pending.take() {
            let s = &mut self.steps[k];
            s.cost = s.gas.saturating_sub(interp.gas.remaining());
            s.stack_after = interp.stack.data().last().copied();
            if matches!(s.op, 0x54 | 0x5c) {
                s.storage = Some((
                    s.stack.first().copied().unwrap_or_default(),
                    s.stack_after.unwrap_or_default(),
                ));
            }
        }
    }
}

/// The mnemonic of an opcode (`0xNN` if undefined).
pub fn opcode_name(op: u8) -> String {
    revm::bytecode::opcode::OpCode::new(op)
        .map_or_else(|| format!("0x{op:02x}"), |o| o.as_str().to_string())
}
