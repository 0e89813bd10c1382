"""The scripted caller: drives a full call in-process through the simulator transport."""
from .caller import SimulationResult, simulate
from .script import Script, ScriptError, load_script, parse_script

__all__ = ["SimulationResult", "simulate", "Script", "ScriptError", "load_script", "parse_script"]
