"""The ported germinate-ai pipeline (seed_pipeline.py) runs unchanged, headless and explored."""

import gc
import runpy
import warnings
from pathlib import Path

import pytest

from germinate_nb import ConditionResult, TaskRegistry, explore, run_workflow

PIPELINE = Path(__file__).with_name("seed_pipeline.py")


@pytest.fixture
def pipeline():
    """The module's globals, declared in this test's fresh registry."""
    return runpy.run_path(str(PIPELINE))


def test_pipeline_runs_end_to_end_following_conditions_in_definition_order(pipeline):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run_workflow(pipeline["workflow"], {"product_requirements": "a tic-tac-toe game"})
        gc.collect()
    assert not [w for w in caught if "never awaited" in str(w.message)]
    assert result.ok, result.error
    assert result.path == ["ideate", "review", "ideate", "review", "publish"]
    assert result.output == {"document": "v2: [PRD] a tic-tac-toe game"}
    first_review, second_review = result.steps[1], result.steps[3]
    # both conditions are evaluated on each visit; the first that holds is followed
    assert first_review.conditions == {"needs_rework": True, "approved": True}
    assert (first_review.transition, first_review.next_state) == ("needs_rework", "ideate")
    assert second_review.conditions == {"needs_rework": False, "approved": True}
    assert (second_review.transition, second_review.next_state) == ("approved", "publish")
    assert result.steps[0].conditions == {"idea_is_ready": True}


def test_condition_results_are_task_outputs_of_the_last_phase(pipeline):
    result = run_workflow(pipeline["workflow"], {"product_requirements": "x"})
    review = pipeline["review_state"]
    assert review.sorted_tasks_dag() == [["carry_task", "score_task"], ["approved", "needs_rework"]]
    runs = result.steps[1].result.task_runs
    assert runs["needs_rework"].output == ConditionResult(holds=True)
    assert runs["approved"].status == "succeeded"
    executor = TaskRegistry.get_executor("transition_conditions.needs_rework_executor")
    assert executor is pipeline["needs_rework"].executor and executor.kind == "condition"
    assert pipeline["needs_rework"].task.kind == "condition"


def test_dependencies_are_resolved_once_per_state_run(pipeline):
    run_workflow(pipeline["workflow"], {"product_requirements": "x"})
    # two ideate runs (pm_task and critic_task share the chain factory), two review runs
    assert pipeline["FACTORY_CALLS"] == ["chain", "grader", "chain", "grader"]


def test_dotted_namespaces_and_custom_executor_are_registered(pipeline):
    assert pipeline["pm_task"].registered_name == "agents.ideate.pm_task_executor"
    assert pipeline["critic_task"].registered_name == "agents.ideate.critic_task_executor"
    assert TaskRegistry.get_executor("agents.review.score_task_executor").name == (
        "score_task_executor"
    )
    release = TaskRegistry.get_executor("custom_tasks.release_executor")
    assert release is pipeline["release_executor"]


def test_pipeline_in_the_explorer_shows_and_runs_condition_tasks(pipeline):
    workflow = pipeline["workflow"]
    run_workflow(workflow, {"product_requirements": "x"})
    ex = explore(workflow)
    try:
        assert list(ex.state_selector.options) == ["ideate", "review", "publish"]
        ex.state_selector.value = "review"
        assert sorted(ex.phase_strip.buttons) == [
            "approved",
            "carry_task",
            "needs_rework",
            "score_task",
        ]
        assert sorted(ex.graph.conditions) == ["approved", "needs_rework"]
        assert ex.statuses["needs_rework"] == "succeeded"
        ex.state_selector.value = "ideate"
        assert "product_requirements" in ex.input_form.fields
        ex.input_form.set(product_requirements="from the explorer")
        ex.run_button.click()
        result = ex.wait(30)
        assert result is not None and result.ok
        assert result.outputs["idea_is_ready"] == ConditionResult(holds=True)
        assert result.outputs["merge_task"].revision == 1
    finally:
        ex.close()
