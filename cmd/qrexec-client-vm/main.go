// Command qrexec-client-vm calls a qrexec service from a domain; dom0's
// policy decides where, if anywhere, it runs (spec/qrexec.md "Caller side").
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"pedos.dev/updates/internal/cmdline"
	"pedos.dev/updates/internal/qrexec"
	"pedos.dev/updates/internal/qrexec/policy"
)

const usage = `Usage: qrexec-client-vm TARGET SERVICE[+ARG] [LOCAL_PROGRAM [ARGS...]]
       qrexec-client-vm --version   (the release and commit it was built from)

Asks dom0 to run SERVICE (with argument ARG) in TARGET: a domain name, dom0,
@adminvm, @default, @dispvm or @dispvm:NAME. Dom0's policy may refuse the
call or send it elsewhere. Once allowed, LOCAL_PROGRAM runs with its stdin
and stdout connected to the service's (its stderr stays here); without one,
this command's own stdin and stdout are connected.

The daemon is reached at $PEDOS_QREXEC_SOCKET (default
/run/pedos/qrexec/daemon.sock): a Unix socket path, vsock:CID:PORT, or
exec:COMMAND (its stdin/stdout, e.g. exec:ssh dom0).

Exit status: LOCAL_PROGRAM's, or the service's without one; 126 refused by
policy, or before it for an invalid TARGET, SERVICE or ARG (dom0 refuses
those; the message here says which rule the name breaks); 127 no such service
in the target; 125 qrexec failure, including a daemon that cannot be reached
and a LOCAL_PROGRAM that cannot be started (checked before the call: no call
is made); 2 usage error.

Examples:
  qrexec-client-vm dom0 PedOS.ReceiveUpdates+SESSION qfile-agent FILES...
  echo hello | qrexec-client-vm work my.Echo
`

func main() {
	qrexec.OneProcessor()
	cli := cmdline.Usage{Command: "qrexec-client-vm", Text: usage}
	fs := cli.FlagSet()
	cli.Parse(fs, os.Args[1:])
	if fs.NArg() < 2 {
		cli.Fail("want TARGET and SERVICE[+ARG], got %d argument(s)", fs.NArg())
	}
	service, argument := qrexec.SplitService(fs.Arg(1))
	req := qrexec.Request{Target: fs.Arg(0), Service: service, Argument: argument}
	program := fs.Args()[2:]
	if len(program) > 0 {
		// Before the call, so that the service never starts for a local
		// end that cannot.
		if _, err := exec.LookPath(program[0]); err != nil {
			os.Exit(fail(fmt.Errorf("LOCAL_PROGRAM: %w (no call made)", err)))
		}
	}
	os.Exit(call(req, fs.Arg(1), program))
}

// call makes the call, named as the caller wrote it in messages, and
// returns the exit status.
func call(req qrexec.Request, asWritten string, program []string) int {
	if _, err := req.Encode(); err != nil {
		// Too long to send: dom0 would refuse it as invalid (126), so say
		// so here, before connecting, rather than fail with 125.
		if invalid := policy.CheckRequested(req.Target, req.Service, req.Argument); invalid != nil {
			fmt.Fprintf(os.Stderr, "qrexec-client-vm: call refused: %v (not sent: too long for a request)\n", invalid)
			return qrexec.ExitRefused
		}
		return fail(err)
	}
	addr := os.Getenv("PEDOS_QREXEC_SOCKET")
	if addr == "" {
		addr = filepath.Join(qrexec.SocketDir, "daemon.sock")
	}
	conn, err := qrexec.Dial(addr)
	if pathErr, ok := errors.AsType[*os.PathError](err); ok {
		err = pathErr.Err // the path is in our message
	}
	if err != nil {
		return fail(fmt.Errorf("cannot reach the qrexec daemon at %s: %w (is it running? $PEDOS_QREXEC_SOCKET says where it is)", addr, err))
	}
	defer conn.Close()
	if err := qrexec.Start(conn, qrexec.MsgCall, req); err != nil {
		refused, ok := errors.AsType[*qrexec.RefusedError](err)
		if !ok {
			return fail(err)
		}
		// dom0 refuses an invalid name before its policy (C4) and does not
		// say why; the name is checked here only to say it. The call was
		// still made: dom0's check is the one that counts.
		if invalid := policy.CheckRequested(req.Target, req.Service, req.Argument); invalid != nil && refused.Code == qrexec.ExitRefused {
			fmt.Fprintf(os.Stderr, "qrexec-client-vm: call refused: %v\n", invalid)
		} else {
			fmt.Fprintf(os.Stderr, "qrexec-client-vm: %s to %s: %v\n", asWritten, req.Target, err)
		}
		return refused.Code
	}
	if len(program) == 0 {
		// No Stderr: a service's stderr goes to its domain's log, never to the
		// caller (spec/qrexec.md), so what a target sends as such is dropped.
		code, err := qrexec.Run(conn, qrexec.Streams{Stdin: os.Stdin, Stdout: os.Stdout})
		if err != nil {
			return fail(err)
		}
		return code
	}
	return runLocal(conn, program)
}

// runLocal runs the local program connected to the call and returns its
// exit status.
func runLocal(conn qrexec.Conn, program []string) int {
	cmd := exec.Command(program[0], program[1:]...)
	cmd.Stderr = os.Stderr
	toRemote, err1 := cmd.StdoutPipe()
	fromRemote, err2 := cmd.StdinPipe()
	if err := qrexec.StartPiped(cmd, err1, err2); err != nil {
		return fail(err)
	}
	// A program that exits without reading everything just loses the rest.
	_, err := qrexec.Run(conn, qrexec.Streams{Stdin: toRemote, Stdout: fromRemote})
	fromRemote.Close()
	if err != nil {
		cmd.Process.Kill()
	}
	status := qrexec.ExitStatus(cmd.Wait())
	if err != nil {
		return fail(err)
	}
	return status
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "qrexec-client-vm:", err)
	return qrexec.ExitFailure
}
