"""What each IOD we write must contain: type 1 and type 2 attributes, module by module.

Normalisation adds a missing type 2 attribute empty and a missing type 1 attribute from the
default here (or fails, where no honest default exists). Only attributes of modules that are
mandatory for the IOD are listed; a decoder that knows a value always wins.
"""

from __future__ import annotations

from typing import Any

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
SECONDARY_CAPTURE_STORAGE = "1.2.840.10008.5.1.4.1.1.7"
MULTIFRAME_WORD_SC_STORAGE = "1.2.840.10008.5.1.4.1.1.7.3"
NM_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.20"
# IODs without a Frame of Reference module: normalisation derives no Frame of Reference UID.
WITHOUT_FRAME_OF_REFERENCE = frozenset((SECONDARY_CAPTURE_STORAGE, MULTIFRAME_WORD_SC_STORAGE))
CR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1"
DX_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1.1"  # for presentation
DX_IMAGE_STORAGE_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.1.1"

SOP_CLASS_BY_MODALITY = {
    "MR": MR_IMAGE_STORAGE,
    "CT": CT_IMAGE_STORAGE,
}

# The modality each single-modality image IOD implies (PS3.3 A.2-A.4, A.26): a Modality
# missing from such an instance is derived from its SOP class.
MODALITY_BY_SOP_CLASS = {
    MR_IMAGE_STORAGE: "MR",
    CT_IMAGE_STORAGE: "CT",
    CR_IMAGE_STORAGE: "CR",
    DX_IMAGE_STORAGE: "DX",
    DX_IMAGE_STORAGE_PROCESSING: "DX",
}

# Image IODs whose Frame of Reference module is mandatory (PS3.3 A.3 CT, A.4 MR, A.21 PET,
# A.36-A.38 enhanced MR/CT, A.56 enhanced PET). CR, DX, Secondary Capture and the other
# projection or capture IODs have none or an optional one: a Frame of Reference UID is
# neither required nor invented for them.
FRAME_OF_REFERENCE_REQUIRED = frozenset({
    MR_IMAGE_STORAGE,
    CT_IMAGE_STORAGE,
    "1.2.840.10008.5.1.4.1.1.128",  # PET Image
    "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR Image
    "1.2.840.10008.5.1.4.1.1.4.2",  # MR Spectroscopy
    "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT Image
    "1.2.840.10008.5.1.4.1.1.130",  # Enhanced PET Image
})

REQUIRED = object()  # type 1 with no default: the decoder must supply it

# (keyword, type, default for type 1)
_PATIENT = [
    ("PatientName", 2, None),
    ("PatientID", 2, None),
    ("PatientBirthDate", 2, None),
    ("PatientSex", 2, None),
]
_GENERAL_STUDY = [
    ("StudyInstanceUID", 1, REQUIRED),
    ("StudyDate", 2, None),
    ("StudyTime", 2, None),
    ("ReferringPhysicianName", 2, None),
    ("StudyID", 2, None),
    ("AccessionNumber", 2, None),
]
_GENERAL_SERIES = [
    ("Modality", 1, REQUIRED),
    ("SeriesInstanceUID", 1, REQUIRED),
    ("SeriesNumber", 2, None),
]
_FRAME_OF_REFERENCE = [
    ("FrameOfReferenceUID", 1, REQUIRED),
    ("PositionReferenceIndicator", 2, None),
]
_GENERAL_EQUIPMENT = [("Manufacturer", 2, None)]
_GENERAL_IMAGE = [("InstanceNumber", 2, None)]
_IMAGE_PLANE = [
    ("PixelSpacing", 1, REQUIRED),
    ("ImageOrientationPatient", 1, REQUIRED),
    ("ImagePositionPatient", 1, REQUIRED),
    ("SliceThickness", 2, None),
]
_IMAGE_PIXEL = [
    ("SamplesPerPixel", 1, 1),
    ("PhotometricInterpretation", 1, "MONOCHROME2"),
    ("Rows", 1, REQUIRED),
    ("Columns", 1, REQUIRED),
    ("BitsAllocated", 1, REQUIRED),
    ("BitsStored", 1, REQUIRED),
    ("HighBit", 1, REQUIRED),
    ("PixelRepresentation", 1, REQUIRED),
    ("PixelData", 1, REQUIRED),
]
_SOP_COMMON = [
    ("SOPClassUID", 1, REQUIRED),
    ("SOPInstanceUID", 1, REQUIRED),
]
_MR_IMAGE = [
    ("ImageType", 1, ["ORIGINAL", "PRIMARY", "OTHER"]),
    ("ScanningSequence", 1, "RM"),
    ("SequenceVariant", 1, "NONE"),
    ("ScanOptions", 2, None),
    ("MRAcquisitionType", 2, None),
    ("RepetitionTime", 2, None),  # 2C: required unless EP with SK; always present is allowed
    ("EchoTime", 2, None),
    ("EchoTrainLength", 2, None),
]
_CT_IMAGE = [
    ("ImageType", 1, ["ORIGINAL", "PRIMARY", "AXIAL"]),
    ("RescaleIntercept", 1, "0"),
    ("RescaleSlope", 1, "1"),
    ("KVP", 2, None),
    ("AcquisitionNumber", 2, None),
]
# CR Series (C.8.1.1) and the General Image module's Patient Orientation (type 2C, required
# when there is no Image Orientation (Patient), which a CR image never has). Laterality is 2C
# (paired body parts), which a CR of unknown anatomy cannot rule out.
_CR_SERIES = [("BodyPartExamined", 2, None), ("ViewPosition", 2, None), ("Laterality", 2, None)]
_CR_IMAGE = [("PatientOrientation", 2, None)]
_SC_EQUIPMENT = [("ConversionType", 1, "WSD")]
# 2C attributes whose conditions a secondary capture of unknown anatomy cannot rule out.
_SC_IMAGE = [("Laterality", 2, None), ("PatientOrientation", 2, None)]

_MULTIFRAME = [("NumberOfFrames", 1, REQUIRED), ("FrameIncrementPointer", 1, REQUIRED)]
_GENERAL_SERIES_2C = [("Laterality", 2, None)]  # 2C: a decoder that cannot rule the condition out

_COMMON = _PATIENT + _GENERAL_STUDY + _GENERAL_SERIES + _GENERAL_EQUIPMENT + _GENERAL_IMAGE

IOD_ATTRIBUTES: dict[str, list[tuple[str, int, Any]]] = {
    MR_IMAGE_STORAGE: _COMMON + _FRAME_OF_REFERENCE + _IMAGE_PLANE + _IMAGE_PIXEL + _MR_IMAGE + _SOP_COMMON,
    CT_IMAGE_STORAGE: _COMMON + _FRAME_OF_REFERENCE + _IMAGE_PLANE + _IMAGE_PIXEL + _CT_IMAGE + _SOP_COMMON,
    CR_IMAGE_STORAGE: _COMMON + _CR_SERIES + _CR_IMAGE + _IMAGE_PIXEL + _SOP_COMMON,
    SECONDARY_CAPTURE_STORAGE: _COMMON + _SC_EQUIPMENT + _SC_IMAGE + _IMAGE_PIXEL + _SOP_COMMON,
    MULTIFRAME_WORD_SC_STORAGE: _COMMON + _SC_EQUIPMENT + _SC_IMAGE + _IMAGE_PIXEL + _MULTIFRAME + _SOP_COMMON,
    NM_IMAGE_STORAGE: _COMMON + _GENERAL_SERIES_2C + _FRAME_OF_REFERENCE + [("PatientOrientation", 2, None)]
    + _IMAGE_PIXEL + _MULTIFRAME
    + _SOP_COMMON,
}
