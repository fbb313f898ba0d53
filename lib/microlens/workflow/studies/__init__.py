"""Study matrices: expand ``studies/<name>.yaml`` into cells and run them with papermill.

* :mod:`.definition`: the study file format, its checks and the expansion into cells;
* :mod:`.runner`: running cells (resume, isolation, shared datasets and runs, parallel jobs);
* :mod:`.report`: ``summary.csv``, the study figures and ``figures/index.html``.

From the shell: ``python -m microlens.workflow.studies run topology --jobs 2`` (see ``--help``), or
``./run_all.sh topology``. From Python::

    from microlens.workflow.studies import load_study, run_study
    run = run_study(load_study("quick"))
"""

from microlens.workflow.studies.definition import (  # noqa: F401
    BASE_CELL,
    Cell,
    Study,
    StudyError,
    available_notebooks,
    available_studies,
    declared_parameters,
    load_study,
)
from microlens.workflow.studies.report import (  # noqa: F401
    build_study_report,
    read_summary,
    rebuild_study_figures,
    summary_rows,
    write_summary,
)
from microlens.workflow.studies.runner import (  # noqa: F401
    CellPlan,
    StudyRun,
    describe_plan,
    plan_study,
    run_cell,
    run_study,
    select_cells,
    study_dir,
)
