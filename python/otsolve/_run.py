"""Running the otsolve program: finding it, the MPI launcher, the command line, the summary lines, errors."""
import os
import re
import shlex
import shutil
import signal
import subprocess
import warnings

# What each exit status of otsolve means (docs/design.md §4, `otsolve -help`).
EXIT_MEANINGS = {
    0: "converged",
    1: "bad input or options",
    2: "not converged within -ot_max_it",
    3: "internal or MPI failure (the job was aborted)",
    4: "interrupted by SIGTERM or SIGUSR1 after writing the -ot_checkpoint file",
    5: "NaN or Inf in the iterates",
    6: "solved, but the result file could not be written",
    7: "interrupted by SIGTERM or SIGUSR1, and the checkpoint could not be written",
}

ERROR_PREFIX = "otsolve: error: "
SUMMARY_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*) = (.*)$")
OPTION_LEFT = re.compile(r"^Option left: name:(\S+)(?: value: (.*))?$")


class OTSolveError(RuntimeError):
    """otsolve ended with an error. The message is otsolve's own (its `otsolve: error: ...` line, without that
    prefix), or, where it printed none, the exit status's meaning and the end of what it printed.

    Attributes: `returncode` (otsolve's exit status; None when it was stopped by `timeout`), `stdout`, `stderr`,
    `command` (the argument list that was run), and `result` (a Result or PairsResult where otsolve still wrote
    its output, as after NaN in the iterates, exit status 5; else None).
    """

    def __init__(self, message, returncode=None, stdout="", stderr="", command=None, result=None):
        super().__init__(message)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.command = command
        self.result = result


def find_executable(executable=None):
    """The otsolve program to run: `executable` if given, else the environment variable OTSOLVE_EXECUTABLE,
    else the program of the build this package was copied into (build/python/otsolve records it), else
    `otsolve` on PATH. Raises FileNotFoundError when none of these is an executable file."""
    tried = []
    candidates = []
    if executable is not None:
        candidates.append(("executable=", str(executable)))
    elif os.environ.get("OTSOLVE_EXECUTABLE"):
        candidates.append(("OTSOLVE_EXECUTABLE", os.environ["OTSOLVE_EXECUTABLE"]))
    else:
        try:
            from . import _build_config
            candidates.append(("the build", _build_config.EXECUTABLE))
        except ImportError:
            pass
        on_path = shutil.which("otsolve")
        candidates.append(("PATH", on_path))
    for source, path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return os.path.abspath(path)
        tried.append("%s (%s)" % (path or "no otsolve", source))
    raise FileNotFoundError("otsolve program not found; tried: " + ", ".join(tried) +
                            ". Build it (meson compile -C build), then set OTSOLVE_EXECUTABLE=build/otsolve "
                            "or pass executable=")


def launcher_command(ranks, launcher=None):
    """The argument list that starts `ranks` MPI processes, to which otsolve's path and options are appended.

    `launcher`: None picks `srun -n RANKS` inside a Slurm allocation (SLURM_JOB_ID set and srun found), else
    `mpiexec -n RANKS`; a list (or a string, split like a shell would) is used as it is, and `ranks` is then
    not added; an empty list runs otsolve directly, as one process.
    """
    if launcher is not None:
        if isinstance(launcher, str):
            return shlex.split(launcher)
        return [str(word) for word in launcher]
    if os.environ.get("SLURM_JOB_ID") and shutil.which("srun"):
        return ["srun", "-n", str(ranks)]
    program = shutil.which("mpiexec") or shutil.which("mpirun")
    if program is None:
        raise FileNotFoundError("neither mpiexec nor mpirun found on PATH; install Open MPI (openmpi-bin) or pass "
                                "launcher= (a list such as ['srun', '-n', '4'], or [] to run one process)")
    return [program, "-n", str(ranks)]


def launch_environment():
    """The environment for the launcher: this process's, plus what Open MPI needs to run as root (only when
    running as root) and to start more ranks than there are cores. Values already set are kept."""
    env = dict(os.environ)
    env.setdefault("OMPI_MCA_rmaps_base_oversubscribe", "1")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    return env


def option_arguments(options):
    """Command-line arguments from keyword options: `tol=1e-9` gives `-ot_tol 1e-9`, `newton_ksp_type='cg'` gives
    `-ot_newton_ksp_type cg`; a name that starts with `ot_` gets only the `-`, one that starts with `-` is passed
    as it is (`**{'-log_view': None}`). True and False give `true` and `false`, None the bare flag, a list or
    tuple its items joined by commas (`eps_schedule=[0.02, 0.01]`), a float its full-precision repr."""
    arguments = []
    for name, value in options.items():
        if name.startswith("-"):
            flag = name
        elif name.startswith("ot_"):
            flag = "-" + name
        else:
            flag = "-ot_" + name
        arguments.append(flag)
        if value is None:
            continue
        arguments.append(option_value(value))
    return arguments


def option_value(value):
    """One option value as otsolve's command line takes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(option_value(item) for item in value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def parse_summary(stdout):
    """The `key = value` lines otsolve prints last, as a dict; values that read as int or float are converted,
    the rest (status, checkpoint_error, output, ...) kept as strings."""
    summary = {}
    for line in stdout.splitlines():
        match = SUMMARY_LINE.match(line.strip())
        if not match:
            continue
        key, text = match.group(1), match.group(2).strip()
        summary[key] = convert_number(text)
    return summary


def convert_number(text):
    """int or float where `text` is one, else `text` itself."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def error_message(returncode, stdout, stderr, names=None):
    """otsolve's own message for a failed run: its `otsolve: error: ...` lines (each once: with several ranks
    failing, each may print the same one), without the prefix, and with the temporary files' paths replaced by
    what they hold (`names`: path -> words, such as 'measures[2]'); where there is none, the meaning of the
    exit status and the last lines printed on stderr that are not the launcher's frame of dashes."""
    messages = []
    for line in (stderr + "\n" + stdout).splitlines():
        where = line.find(ERROR_PREFIX)
        if where >= 0:
            text = line[where + len(ERROR_PREFIX):].strip()
            # longest first, so that no path is replaced inside a longer one
            for path in sorted(names or {}, key=len, reverse=True):
                text = text.replace(path, names[path])
            if text not in messages:
                messages.append(text)
    if messages:
        return "\n".join(messages)
    meaning = EXIT_MEANINGS.get(returncode, "unknown exit status")
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("-----")]
    tail = "\n".join(lines[-20:])
    # no message of otsolve's: the launcher may have failed before otsolve started, so both are named
    return "the run (launcher and otsolve) ended with exit status %s (for otsolve: %s)%s" % (
        returncode, meaning, ":\n" + tail if tail else "")


def unused_options(stdout):
    """The options otsolve reported as never used (`-options_left`): misspelt names, or options the chosen
    method does not read."""
    names = []
    for line in stdout.splitlines():
        match = OPTION_LEFT.match(line.strip())
        if match:
            names.append(match.group(1))
    return names


def run(arguments, ranks=1, executable=None, launcher=None, timeout=None, cwd=None):
    """Runs otsolve with `arguments` under the launcher and waits for it.

    Returns (returncode, stdout, stderr, command). `-options_left` is added, and every option otsolve read but
    did not use becomes a UserWarning (an option nothing reads is otsolve's error, exit 1). With `timeout` (seconds) the run is sent SIGTERM when it is over, then SIGKILL
    5 s later, and OTSolveError is raised; an interrupt (Ctrl-C) also ends the whole process group.
    """
    if int(ranks) < 1:
        raise ValueError("ranks must be at least 1, got %r" % (ranks,))
    program = find_executable(executable)
    command = launcher_command(int(ranks), launcher) + [program] + list(arguments) + ["-options_left"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=launch_environment(), cwd=cwd, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stdout, stderr = stop(process)
        raise OTSolveError("otsolve did not finish within timeout=%g s and was stopped" % timeout,
                           None, stdout, stderr, command)
    except BaseException:
        stop(process)
        raise
    for name in unused_options(stdout) if process.returncode != 1 else []:  # exit 1: otsolve's own message says it
        warnings.warn("otsolve did not use the option %s (read, but not by the method that ran)" % name,
                      UserWarning, stacklevel=3)
    return process.returncode, stdout, stderr, command


def stop(process):
    """Ends the launcher and the ranks it started (its process group): SIGTERM, then SIGKILL after 5 s.
    Returns what they printed."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        return process.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return process.communicate()
