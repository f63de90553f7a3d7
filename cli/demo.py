"""``rehab demo``: the product's main job, with a progress bar and a summary."""

from __future__ import annotations

import json
import signal
import time
from datetime import date

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from engine.infra.settings import get_settings
from sim.demo_accounts import create_demo_accounts, people_have_work
from sim.scenario import DemoOptions, demo_stack, run_scenario


def run_demo_command(*, persons: int, json_out: bool, serve: bool, prefect: bool,
                     max_days: int, seed: int) -> None:
    if persons < 1:
        raise typer.BadParameter("persons: must be at least 1", param_hint="--persons")
    signal.signal(signal.SIGTERM, _stop)  # `kill` ends it like Ctrl-C: children stopped
    settings = get_settings()
    opts = DemoOptions(persons=persons, max_days=max_days, seed=seed, prefect=prefect,
                       work_dir=settings.var_dir / "demo", leave_work_open=serve)
    console = Console(stderr=True)
    console.print(f"[bold]Демо:[/] {persons} синтетических получателей, маршруты "
                  f"четырёх видов (сопровождаемое проживание, социальная занятость, ранняя "
                  f"помощь, сопровождение), старт {opts.start:%d.%m.%Y}, "
                  f"seed {seed}" + ("" if prefect else " (без Prefect)"))
    with demo_stack(opts, settings) as stack:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, transient=json_out) as bar:
            task = bar.add_task("маршруты", total=persons)

            def on_day(done: int, total: int, day: date) -> None:
                bar.update(task, completed=done,
                           description=f"маршруты · день {day:%d.%m.%Y}")

            summary = run_scenario(opts, stack, settings, on_day)
        if json_out:
            typer.echo(json.dumps(summary.as_dict(), ensure_ascii=False, indent=2))
        else:
            _print_summary(console, summary.as_dict())
        if serve:
            stopped = date.fromisoformat(summary.simulated_to)
            if people_have_work(stack["engine"]):
                console.print(f"\nДемо остановлено вечером {stopped:%d.%m.%Y}, пока у людей "
                              "есть работа: открытая эскалация, запросы без ответа.",
                              soft_wrap=True)
            else:
                console.print(f"\nК {stopped:%d.%m.%Y} все маршруты завершены: открытых "
                              "эскалаций и запросов нет (больше работы даст больший "
                              "--persons).", soft_wrap=True)
            console.print(f"API: {stack['api_url']}/docs   страницы: {stack['api_url']}/")
            accounts = create_demo_accounts(stack["engine"])
            console.print(f"Вход для сотрудников: {stack['api_url']}/login")
            for acc in accounts:  # one line each, whatever the terminal's width
                console.print(f"  {acc.role.value:<12} {acc.id:<17} пароль: {acc.password}"
                              f"  — {acc.what}", soft_wrap=True)
            if stack["prefect_ui"]:
                console.print(f"Prefect UI: {stack['prefect_ui']} — Flow Runs → route-… "
                              f"(вкладки Artifacts и Logs; фильтр по тегу state:overdue), "
                              f"Deployments → timer-sweeper")
            console.print("Ctrl-C — остановить.")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass


def _stop(signum: int, frame: object) -> None:
    """SIGTERM: unwind as Ctrl-C does, so the demo's API, worker, agencies and Prefect
    server are stopped rather than left running."""
    raise KeyboardInterrupt


LABELS: dict[str, str] = {
    "seed": "seed (зерно генерации)",
    "routes": "маршрутов", "routes_completed": "завершено", "routes_active": "в работе",
    "routes_cancelled": "отменено", "routes_terminated": "прекращено (004 п.13)",
    "steps": "шагов", "steps_done": "шагов выполнено",
    "answers_on_time": "ответов в срок", "answers_late": "ответов с опозданием",
    "absent_notices": "уведомлений об отсутствии сведений",
    "overdue_steps": "просроченных шагов", "escalations": "эскалации по уровням",
    "supervisor_actions": "действий руководителя",
    "supervisor_actions_by_kind": "из них по видам",
    "requests": "запросов отправлено",
    "distinct_keys_at_agencies": "различных запросов у ведомств",
    "deliveries_at_agencies": "доставок (с повторами)",
    "agency_fates": "поведение ведомств (по запросам)",
    "sweeps": "проверок таймеров", "sweeps_with_timers_due": "из них со сработавшими",
    "timers_fired": "сработало таймеров",
    "simulated_from": "с", "simulated_to": "по", "simulated_days": "дней смоделировано",
    "wall_seconds": "время, с", "flow_runs_mirrored": "маршрутов в Prefect (flow runs)",
    "sweeper_flow_runs": "запусков timer-sweeper в Prefect",
    "sweeper_deployment_id": "развёртывание timer-sweeper в Prefect (id)",
    "prefect_ui": "Prefect UI", "api_url": "API",
    "ipra_imported": "ИПРА загружено", "applications": "заявлений",
    "applications_by_kind": "заявлений по видам",
    "applications_eligible": "решений «да»", "applications_ineligible": "отказов (с причинами)",
    "consent_withdrawals": "отзывов согласия", "routes_suspended": "маршрутов приостановлено",
    "steps_suspended": "шагов приостановлено",
    "routes_by_kind": "маршрутов по видам", "route_outcomes": "итоги маршрутов по видам",
}
WORDS: dict[str, str] = {
    # escalation levels (298-п Порядок п.13; 363н п.10б)
    "reminder": "напоминание", "overdue": "просрочка", "escalated": "эскалация",
    # what the simulated agencies did
    "on_time": "в срок", "late": "с опозданием", "never": "без ответа",
    "absent": "сведений нет", "rejected": "на уточнение",
    # the supervisor's actions (298-п Порядок п.13)
    "acknowledged": "принято в работу", "deadline_extended": "срок продлён",
    "reassigned": "передано другому", "closed": "шаг закрыт",
    # timers
    "answer_reminder": "напоминание", "answer_overdue": "просрочка ответа",
    "answer_escalation": "эскалация ответа", "send_overdue": "просрочка отправки",
    "recur_next": "повторная проверка", "ipra_expiry": "окончание срока ИПРА",
    "complete_overdue": "просрочка исполнения", "complete_escalation": "эскалация исполнения",
    # outcomes of routes (issue 11; 004 п.11, п.13)
    "completed": "завершён", "cancelled": "отменён", "suspended": "приостановлен",
    "active": "в работе", "participant_refused": "отказ участника",
    "participant_resumed": "возобновлён", "migrated": "переведён на новую версию",
    "terminated": "прекращён", "terminated:ipra_expired": "прекращён: истёк срок ИПРА",
    "terminated:person_request": "прекращён: заявление о прекращении",
    "terminated:grounds_removed": "прекращён: нет оснований по новой ИПРА",
    # kinds of application (363н; 298-п Регламент п.3; 000 п.10; 003)
    "accompaniment": "сопровождение", "supported_living": "сопровождаемое проживание",
    "social_employment": "социальная занятость", "early_help": "ранняя помощь",
}


def _text(value: object) -> str:
    if isinstance(value, dict):
        return " · ".join(f"{WORDS.get(str(k), str(k))}: {_inner(v)}"
                          for k, v in value.items()) or "—"
    return "—" if value is None else str(value)


def _inner(value: object) -> str:
    """A nested count (outcomes of one kind of route) in parentheses."""
    if isinstance(value, dict):
        return "(" + ", ".join(f"{WORDS.get(str(k), str(k))} {v}"
                               for k, v in value.items()) + ")"
    return str(value)


def _print_summary(console: Console, d: dict[str, object]) -> None:
    t = Table(title="Итоги демо", show_header=False)
    for key, label in LABELS.items():
        if key in d:
            t.add_row(label, _text(d[key]))
    console.print(t)
